//! Reasons for contact: the company's taxonomy (hierarchical codes such as `billing/refund`,
//! their names, the aliases old codes map through, and optional rules) and the pure matcher that
//! suggests reasons for an inbound message from its text.
//!
//! A rule holds keywords or phrases and patterns (regular expressions), optionally limited to
//! channels. Text and phrases are compared folded: without case or accents (`fold`). A phrase
//! matches on word boundaries, except where its script writes no spaces between words (Han,
//! kana, Thai…), where it matches anywhere. Every phrase of every rule is one Aho-Corasick
//! automaton and every pattern one `RegexSet`, so a message is read twice whatever the number of
//! rules.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{RegexSet, RegexSetBuilder};
use serde::Deserialize;
use throughline_edge::config::Reloading;
use throughline_model::Channel;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// How often a function reads the taxonomy document again (a change in SSM reaches running
/// functions within this time).
pub const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The taxonomy's variable: `REASONS_TAXONOMY` (the document, local runs) or
/// `REASONS_TAXONOMY_PARAMETER` (the SSM parameter's name, deployed).
pub const TAXONOMY_VAR: &str = "REASONS_TAXONOMY";

/// Parses a taxonomy document (`Reloading`'s parser).
pub fn parse_document(document: &str) -> Result<Taxonomy, String> {
    Taxonomy::from_json(document).map_err(|e| e.to_string())
}

/// The company's taxonomy as configured (`TAXONOMY_VAR`), read again every `RELOAD_EVERY`;
/// `None` when none is configured.
pub async fn from_env(
    aws: &aws_config::SdkConfig,
) -> Result<Option<std::sync::Arc<Reloading<Taxonomy>>>, throughline_edge::ConfigError> {
    Ok(Reloading::from_env(aws, TAXONOMY_VAR, parse_document, RELOAD_EVERY)
        .await?
        .map(std::sync::Arc::new))
}

/// The taxonomy in the SSM parameter `name` (tests and tools that know it).
pub async fn from_parameter(
    aws: &aws_config::SdkConfig,
    name: &str,
) -> Result<std::sync::Arc<Reloading<Taxonomy>>, throughline_edge::ConfigError> {
    Ok(std::sync::Arc::new(
        Reloading::from_parameter(aws, name, parse_document, RELOAD_EVERY).await?,
    ))
}

/// Where a function keeps the taxonomy: read again when older than `RELOAD_EVERY`.
pub type ReloadingTaxonomy = std::sync::Arc<Reloading<Taxonomy>>;

/// A reason code: one to four `/`-separated segments of lower-case letters, digits, `_` and `-`
/// (at most 40 each).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonCode(String);

impl ReasonCode {
    /// The code, if it is one.
    pub fn parse(code: &str) -> Result<Self, String> {
        let segments: Vec<&str> = code.split('/').collect();
        if segments.len() > 4 {
            return Err("a reason code has at most 4 levels".into());
        }
        let valid = |s: &&str| {
            !s.is_empty()
                && s.len() <= 40
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        if segments.iter().all(valid) {
            Ok(Self(code.to_owned()))
        } else {
            Err("a reason code is lower-case letters, digits, `_` or `-`, in levels separated by `/`".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The taxonomy document, as the company writes it (an SSM parameter, like the secrets).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxonomyDocument {
    pub codes: Vec<CodeDefinition>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeDefinition {
    pub code: String,
    /// What agents and reports show.
    pub name: String,
    /// Codes this one replaced: history recorded under them reads as this one.
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub rules: Vec<RuleDefinition>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDefinition {
    /// Words or phrases.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Regular expressions (Rust `regex` syntax), matched without case or accents.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Only on these channels (empty: every channel).
    #[serde(default)]
    pub channels: Vec<Channel>,
}

/// Why a taxonomy document cannot be used. Names the code, never the company's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxonomyError {
    #[error("the taxonomy is not a taxonomy document: {0}")]
    NotADocument(String),
    #[error("{code}: {problem}")]
    InvalidCode { code: String, problem: String },
    #[error("{0} is defined twice (as a code or an alias)")]
    Duplicate(String),
    #[error("{0}: a rule needs a keyword or a pattern")]
    EmptyRule(String),
    #[error("{code}: pattern {index} is not a valid regular expression")]
    BadPattern { code: String, index: usize },
}

/// One code of the taxonomy.
#[derive(Debug, Clone)]
pub struct Reason {
    pub code: ReasonCode,
    pub name: String,
}

#[derive(Debug, Clone)]
struct Rule {
    reason: usize,
    channels: Vec<Channel>,
}

/// What matched, for the suggestion's record (the company's own rule text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    Keyword(String),
    Pattern(String),
}

/// A reason a message suggests, and the rule that suggested it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub code: ReasonCode,
    /// The index of the rule among its code's rules.
    pub rule: usize,
    pub matched: Matched,
}

/// A parsed taxonomy, ready to match.
#[derive(Debug, Clone)]
pub struct Taxonomy {
    reasons: Vec<Reason>,
    /// Every code and alias → its reason.
    names: HashMap<String, usize>,
    rules: Vec<Rule>,
    /// Of each rule, its index among its code's rules.
    rule_index: Vec<usize>,
    phrases: AhoCorasick,
    /// Of each phrase: its rule, its text as written, whether it needs word boundaries.
    phrase_of: Vec<(usize, String, bool)>,
    patterns: RegexSet,
    pattern_of: Vec<(usize, String)>,
}

/// Text as rules compare it: compatibility-decomposed, without combining marks, lower-case
/// (`Ça`, `ÇA` and `ca` are one; `ﬁ` is `fi`).
pub fn fold(text: &str) -> String {
    // Lower-cased before and after: `İ` lower-cases into `i` and a combining dot, and a
    // compatibility form may decompose into a capital (`Ⓐ` is `A`).
    let lower: String = text.chars().flat_map(char::to_lowercase).collect();
    lower
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Scripts written without spaces between words: a phrase in them has no word boundaries.
fn spaceless(c: char) -> bool {
    matches!(u32::from(c),
        0x3040..=0x30FF // Hiragana, Katakana
        | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF // Han
        | 0x0E00..=0x0EFF // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
    )
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Taxonomy {
    /// Parses and checks a taxonomy document.
    pub fn from_json(document: &str) -> Result<Self, TaxonomyError> {
        let document: TaxonomyDocument =
            serde_json::from_str(document).map_err(|e| TaxonomyError::NotADocument(e.to_string()))?;
        Self::new(document)
    }

    pub fn new(document: TaxonomyDocument) -> Result<Self, TaxonomyError> {
        let mut reasons = Vec::new();
        let mut names = HashMap::new();
        let mut rules = Vec::new();
        let mut rule_index = Vec::new();
        let mut phrase_texts = Vec::new();
        let mut phrase_of = Vec::new();
        let mut pattern_texts = Vec::new();
        let mut pattern_of = Vec::new();
        for definition in document.codes {
            let invalid = |code: &str, problem: String| TaxonomyError::InvalidCode {
                code: code.to_owned(),
                problem,
            };
            let code = ReasonCode::parse(&definition.code).map_err(|p| invalid(&definition.code, p))?;
            let reason = reasons.len();
            for name in std::iter::once(&definition.code).chain(&definition.aliases) {
                ReasonCode::parse(name).map_err(|p| invalid(name, p))?;
                if names.insert(name.clone(), reason).is_some() {
                    return Err(TaxonomyError::Duplicate(name.clone()));
                }
            }
            for (index, rule) in definition.rules.iter().enumerate() {
                let keywords: Vec<String> = rule
                    .keywords
                    .iter()
                    .map(|k| fold(k.trim()))
                    .filter(|k| !k.is_empty())
                    .collect();
                if keywords.is_empty() && rule.patterns.is_empty() {
                    return Err(TaxonomyError::EmptyRule(definition.code.clone()));
                }
                let id = rules.len();
                rules.push(Rule {
                    reason,
                    channels: rule.channels.clone(),
                });
                rule_index.push(index);
                for (folded, written) in keywords.into_iter().zip(&rule.keywords) {
                    let bounded =
                        !folded.chars().next().is_some_and(spaceless) || !folded.chars().last().is_some_and(spaceless);
                    phrase_texts.push(folded);
                    phrase_of.push((id, written.clone(), bounded));
                }
                for (n, pattern) in rule.patterns.iter().enumerate() {
                    // Accents go from the pattern as from the text; case is the regex's flag
                    // (lower-casing a pattern would change `\D` into `\d`).
                    let without_marks: String = pattern.nfkd().filter(|c| !is_combining_mark(*c)).collect();
                    if regex::Regex::new(&without_marks).is_err() {
                        return Err(TaxonomyError::BadPattern {
                            code: definition.code.clone(),
                            index: n,
                        });
                    }
                    pattern_texts.push(without_marks);
                    pattern_of.push((id, pattern.clone()));
                }
            }
            reasons.push(Reason {
                code,
                name: definition.name,
            });
        }
        let phrases = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&phrase_texts)
            .map_err(|e| TaxonomyError::NotADocument(e.to_string()))?;
        let patterns = RegexSetBuilder::new(&pattern_texts)
            .case_insensitive(true)
            .build()
            .map_err(|e| TaxonomyError::NotADocument(e.to_string()))?;
        Ok(Self {
            reasons,
            names,
            rules,
            rule_index,
            phrases,
            phrase_of,
            patterns,
            pattern_of,
        })
    }

    /// Every code, in the document's order.
    pub fn reasons(&self) -> &[Reason] {
        &self.reasons
    }

    /// The current code a code or an alias names; `None` for one the taxonomy does not know
    /// (the API's `400`).
    pub fn resolve(&self, code: &str) -> Option<&Reason> {
        self.names.get(code).map(|i| &self.reasons[*i])
    }

    /// The reasons `text` (a message's text, an email's subject) suggests on `channel`: at most
    /// one per code (its first rule that matched, phrases before patterns), in the taxonomy's
    /// order. Pure.
    pub fn suggest(&self, text: &str, channel: Channel) -> Vec<Suggestion> {
        let folded = fold(text);
        let applies = |rule: usize| {
            let channels = &self.rules[rule].channels;
            channels.is_empty() || channels.contains(&channel)
        };
        let mut first: Vec<Option<(usize, Matched)>> = vec![None; self.reasons.len()];
        let note = |first: &mut Vec<Option<(usize, Matched)>>, rule: usize, matched: Matched| {
            let slot = &mut first[self.rules[rule].reason];
            if slot.as_ref().is_none_or(|(r, _)| rule < *r) {
                *slot = Some((rule, matched));
            }
        };
        for found in self.phrases.find_overlapping_iter(&folded) {
            let (rule, written, bounded) = &self.phrase_of[found.pattern().as_usize()];
            if !applies(*rule) {
                continue;
            }
            let before = folded[..found.start()].chars().next_back();
            let after = folded[found.end()..].chars().next();
            if *bounded && (before.is_some_and(word_char) || after.is_some_and(word_char)) {
                continue;
            }
            note(&mut first, *rule, Matched::Keyword(written.clone()));
        }
        for index in self.patterns.matches(&folded).into_iter() {
            let (rule, written) = &self.pattern_of[index];
            if applies(*rule) && first[self.rules[*rule].reason].is_none() {
                note(&mut first, *rule, Matched::Pattern(written.clone()));
            }
        }
        first
            .into_iter()
            .enumerate()
            .filter_map(|(reason, hit)| {
                hit.map(|(rule, matched)| Suggestion {
                    code: self.reasons[reason].code.clone(),
                    rule: self.rule_index[rule],
                    matched,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
