//! Segments (issue 18, started), pure: a company names groups of customers by a condition over
//! their attributes — calculated ones the store keeps current (`conversations_30d`,
//! `last_channel`, `average_rating`…) and its own from its CRM (`lifetime_value`, `plan`) — and
//! each customer's membership is evaluated whenever an attribute the condition reads changes
//! (`Condition::reads`), never by a batch job.
//!
//! A definition, as configured:
//! `{"name": "high_value", "priority": true, "condition": {"all": [
//!     {"attr": "lifetime_value", "op": ">=", "value": 1000},
//!     {"any": [{"attr": "plan", "in": ["gold", "platinum"]}, {"attr": "conversations_30d", "op": ">=", "value": 3}]}]}}`
//! Values are typed: a number compares with numbers, a string with strings, a date
//! (`YYYY-MM-DD`) with dates, a boolean only for (in)equality; a comparison across types, or of
//! an attribute the customer does not have, is false (and `!=` of a missing one too: unknown is
//! not "different").

pub mod calculated;

use std::collections::{BTreeMap, BTreeSet};

pub use calculated::Calculated;

use chrono::NaiveDate;
use serde::Deserialize;

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
    Date(NaiveDate),
    Bool(bool),
}

impl Value {
    /// A JSON value as an attribute value: a string that is a `YYYY-MM-DD` date is a date.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::Number(n) => n.as_f64().map(Value::Number),
            serde_json::Value::Bool(b) => Some(Value::Bool(*b)),
            serde_json::Value::String(s) => {
                Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_or_else(|_| Value::Text(s.clone()), Value::Date))
            }
            _ => None,
        }
    }

    fn compare(&self, other: &Value) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => a.partial_cmp(b),
            (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) if a == b => Some(std::cmp::Ordering::Equal),
            _ => None,
        }
    }
}

/// A customer's attributes by name.
pub type Attributes = BTreeMap<String, Value>;

impl Value {
    /// The value as JSON (a date as `YYYY-MM-DD`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Number(n) => {
                serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Value::Text(s) => serde_json::Value::String(s.clone()),
            Value::Date(d) => serde_json::Value::String(d.format("%Y-%m-%d").to_string()),
            Value::Bool(b) => serde_json::Value::Bool(*b),
        }
    }
}

/// Most company attributes one customer holds.
pub const MAX_ATTRIBUTES: usize = 50;
/// Most bytes they take, as JSON.
pub const MAX_ATTRIBUTE_BYTES: usize = 4096;

/// Why a customer's company attributes are refused (names the key or the limit, never a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    #[error("attributes are a JSON object of keys to values")]
    NotAnObject,
    #[error("attribute keys are [a-z0-9_]{{1,64}}: {0:?} is not")]
    BadKey(String),
    #[error("attribute {0}: values are strings, finite numbers, booleans or YYYY-MM-DD dates")]
    BadValue(String),
    #[error("at most {MAX_ATTRIBUTES} attributes per customer")]
    TooMany,
    #[error("the attributes take more than {MAX_ATTRIBUTE_BYTES} bytes")]
    TooLarge,
}

/// A company's attributes of one customer (`PUT /customers/{id}/attributes`'s object), parsed
/// and within the limits. Pure.
pub fn parse_attributes(json: &serde_json::Value) -> Result<Attributes, AttributeError> {
    let object = json.as_object().ok_or(AttributeError::NotAnObject)?;
    if object.len() > MAX_ATTRIBUTES {
        return Err(AttributeError::TooMany);
    }
    if json.to_string().len() > MAX_ATTRIBUTE_BYTES {
        return Err(AttributeError::TooLarge);
    }
    object
        .iter()
        .map(|(key, value)| {
            if !valid_name(key) {
                // The key is the company's own field name, not a customer's data.
                return Err(AttributeError::BadKey(key.chars().take(64).collect()));
            }
            let value = Value::from_json(value)
                .filter(|v| !matches!(v, Value::Number(n) if !n.is_finite()))
                .ok_or_else(|| AttributeError::BadValue(key.clone()))?;
            Ok((key.clone(), value))
        })
        .collect()
}

/// Attributes as a JSON object (what `parse_attributes` reads back).
pub fn attributes_json(attributes: &Attributes) -> serde_json::Value {
    serde_json::Value::Object(attributes.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Op {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

/// A condition, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Compare { attr: String, op: Op, value: Value },
    In { attr: String, values: Vec<Value> },
    Exists(String),
}

/// Why a definition does not parse (names the segment and the part, never a customer's data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("segment definitions are not valid JSON: {0}")]
    Json(String),
    #[error("segment {segment}: {problem}")]
    Invalid { segment: String, problem: String },
}

/// A segment as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// `[a-z0-9_]{1,64}`.
    pub name: String,
    /// Its customers' open conversations carry `priority: high`.
    pub priority: bool,
    pub condition: Condition,
}

/// Most nesting a condition may have.
const MAX_DEPTH: usize = 8;

/// Attribute names: `[a-z0-9_]{1,64}` (the same as company attributes).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn parse_condition(json: &serde_json::Value, depth: usize) -> Result<Condition, String> {
    if depth > MAX_DEPTH {
        return Err(format!("conditions nest at most {MAX_DEPTH} deep"));
    }
    let object = json.as_object().ok_or("a condition is an object")?;
    let list = |key: &str| -> Result<Vec<Condition>, String> {
        let items = object[key]
            .as_array()
            .ok_or(format!("`{key}` takes a list of conditions"))?;
        if items.is_empty() {
            return Err(format!("`{key}` needs at least one condition"));
        }
        items.iter().map(|c| parse_condition(c, depth + 1)).collect()
    };
    let attr = || -> Result<String, String> {
        let name = object
            .get("attr")
            .and_then(serde_json::Value::as_str)
            .ok_or("a comparison names its `attr`")?;
        if valid_name(name) {
            Ok(name.to_owned())
        } else {
            Err("attribute names are [a-z0-9_]{1,64}".into())
        }
    };
    let value =
        |v: &serde_json::Value| Value::from_json(v).ok_or("values are numbers, strings, dates or booleans".to_owned());
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    Ok(match keys.iter().copied().collect::<Vec<_>>().as_slice() {
        ["all"] => Condition::All(list("all")?),
        ["any"] => Condition::Any(list("any")?),
        ["not"] => Condition::Not(Box::new(parse_condition(&object["not"], depth + 1)?)),
        ["attr", "op", "value"] => Condition::Compare {
            attr: attr()?,
            op: serde_json::from_value(object["op"].clone())
                .map_err(|_| "`op` is one of == != < <= > >=".to_owned())?,
            value: value(&object["value"])?,
        },
        ["attr", "in"] => Condition::In {
            attr: attr()?,
            values: object["in"]
                .as_array()
                .ok_or("`in` takes a list of values")?
                .iter()
                .map(value)
                .collect::<Result<_, _>>()?,
        },
        ["attr", "exists"] if object["exists"] == serde_json::Value::Bool(true) => Condition::Exists(attr()?),
        _ => {
            return Err(
                "a condition is one of all, any, not, {attr, op, value}, {attr, in}, {attr, exists: true}".into(),
            );
        }
    })
}

/// Most segments a company may define (a customer's memberships change in one transaction).
pub const MAX_SEGMENTS: usize = 50;

/// The segments a customer with `attributes` is in, by name.
pub fn memberships<'a>(segments: &'a [Segment], attributes: &Attributes) -> BTreeSet<&'a str> {
    segments
        .iter()
        .filter(|s| s.condition.holds(attributes))
        .map(|s| s.name.as_str())
        .collect()
}

/// `parse_segments` with its error as text: how a reloading settings document parses.
pub fn parse_segment_settings(document: &str) -> Result<Vec<Segment>, String> {
    parse_segments(document).map_err(|e| e.to_string())
}

/// Parses the segment definitions (a JSON list, at most `MAX_SEGMENTS`).
pub fn parse_segments(document: &str) -> Result<Vec<Segment>, SegmentError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Definition {
        name: String,
        #[serde(default)]
        priority: bool,
        condition: serde_json::Value,
    }
    let definitions: Vec<Definition> = serde_json::from_str(document).map_err(|e| SegmentError::Json(e.to_string()))?;
    if let Some(extra) = definitions.get(MAX_SEGMENTS) {
        return Err(SegmentError::Invalid {
            segment: extra.name.clone(),
            problem: format!("at most {MAX_SEGMENTS} segments may be defined"),
        });
    }
    let mut seen = BTreeSet::new();
    definitions
        .into_iter()
        .map(|d| {
            let invalid = |problem: String| SegmentError::Invalid {
                segment: d.name.clone(),
                problem,
            };
            if !valid_name(&d.name) {
                return Err(invalid("segment names are [a-z0-9_]{1,64}".into()));
            }
            if !seen.insert(d.name.clone()) {
                return Err(invalid("defined twice".into()));
            }
            Ok(Segment {
                condition: parse_condition(&d.condition, 0).map_err(invalid)?,
                name: d.name,
                priority: d.priority,
            })
        })
        .collect()
}

impl Condition {
    /// Whether a customer with these attributes meets it. Pure.
    pub fn holds(&self, attributes: &Attributes) -> bool {
        match self {
            Condition::All(all) => all.iter().all(|c| c.holds(attributes)),
            Condition::Any(any) => any.iter().any(|c| c.holds(attributes)),
            Condition::Not(inner) => !inner.holds(attributes),
            Condition::Exists(attr) => attributes.contains_key(attr),
            Condition::In { attr, values } => attributes
                .get(attr)
                .is_some_and(|v| values.iter().any(|w| v.compare(w) == Some(std::cmp::Ordering::Equal))),
            Condition::Compare { attr, op, value } => {
                let Some(ordering) = attributes.get(attr).and_then(|v| v.compare(value)) else {
                    // Across types, a boolean's `!=` is still meaningful.
                    return *op == Op::Ne
                        && matches!((attributes.get(attr), value), (Some(Value::Bool(a)), Value::Bool(b)) if a != b);
                };
                use std::cmp::Ordering::*;
                match op {
                    Op::Eq => ordering == Equal,
                    Op::Ne => ordering != Equal,
                    Op::Lt => ordering == Less,
                    Op::Le => ordering != Greater,
                    Op::Gt => ordering == Greater,
                    Op::Ge => ordering != Less,
                }
            }
        }
    }

    /// Every attribute it reads: a change to any other cannot change its result, so a
    /// customer's membership is evaluated again only when one of these changed.
    pub fn reads(&self) -> BTreeSet<&str> {
        let mut names = BTreeSet::new();
        self.collect_reads(&mut names);
        names
    }

    fn collect_reads<'a>(&'a self, names: &mut BTreeSet<&'a str>) {
        match self {
            Condition::All(list) | Condition::Any(list) => list.iter().for_each(|c| c.collect_reads(names)),
            Condition::Not(inner) => inner.collect_reads(names),
            Condition::Exists(attr) | Condition::In { attr, .. } | Condition::Compare { attr, .. } => {
                names.insert(attr);
            }
        }
    }
}

#[cfg(test)]
mod tests;
