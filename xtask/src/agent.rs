//! What an agent's desktop does with the timeline API: find a customer by an identifier, merge,
//! read the timeline conversation by conversation, see link suggestions. Used by `cargo xtask
//! demo` (the API binary under `cargo lambda watch`) and `cargo xtask timeline`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::{Result, workspace_root};

/// Where `demo --serve` leaves the local API's address for `cargo xtask timeline`.
pub fn local_api_file() -> PathBuf {
    workspace_root().join("target/throughline-local-api")
}

pub struct TimelineClient {
    base: String,
    http: reqwest::Client,
}

/// `phone:+14155550100` → `phone%3A%2B14155550100`.
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl TimelineClient {
    /// `base`: the API's root URL (the local Function URL of the API binary).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let (status, value) = self.answer(method.clone(), path, body, &[]).await?;
        if !(200..300).contains(&status) {
            // Ours carry `error.message`; anything else (the emulator's own) is shown whole.
            let message = value["error"]["message"]
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            return Err(format!("{method} {path} → {status}: {message}").into());
        }
        Ok(value)
    }

    /// The status and body of any call, refusals included.
    async fn answer(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    /// `POST /customers/{id}/messages`: the status and body (a 422 is an answer, not an error).
    pub async fn send_message(&self, customer: &str, key: &str, body: Value) -> Result<(u16, Value)> {
        self.answer(
            reqwest::Method::POST,
            &format!("/customers/{customer}/messages"),
            Some(body),
            &[("Idempotency-Key", key)],
        )
        .await
    }

    pub async fn find(&self, identifier: &str) -> Result<Value> {
        self.call(
            reqwest::Method::GET,
            &format!("/customers?identifier={}", encode(identifier)),
            None,
        )
        .await
    }

    pub async fn merge(&self, target: &str, source: &str, reason: &str) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            &format!("/customers/{target}/merge"),
            Some(json!({ "source_customer_id": source, "reason": reason })),
        )
        .await
    }

    /// Joins conversations into the first one.
    pub async fn join(&self, customer: &str, conversations: &[String], reason: &str) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            &format!("/customers/{customer}/conversations/join"),
            Some(json!({ "conversation_ids": conversations, "reason": reason })),
        )
        .await
    }

    pub async fn suggestions(&self, customer: &str) -> Result<Vec<Value>> {
        let list = self
            .call(
                reqwest::Method::GET,
                &format!("/customers/{customer}/suggestions"),
                None,
            )
            .await?;
        Ok(list["suggestions"].as_array().cloned().unwrap_or_default())
    }

    /// The customer's conversations with their lifecycle, most recently active first.
    pub async fn conversations(&self, customer: &str) -> Result<Vec<Value>> {
        let list = self
            .call(
                reqwest::Method::GET,
                &format!("/customers/{customer}/conversations"),
                None,
            )
            .await?;
        Ok(list["conversations"].as_array().cloned().unwrap_or_default())
    }

    /// `POST /conversations/{id}/resolve` with these reasons: the conversation as it is now,
    /// the ledger fact and what became of its survey.
    pub async fn resolve(&self, conversation: &str, reasons: &[String]) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            &format!("/conversations/{conversation}/resolve"),
            Some(json!({ "reasons": reasons })),
        )
        .await
    }

    /// `PUT /customers/{id}/attributes`: the attributes now and the segments they put the
    /// customer in.
    pub async fn set_attributes(&self, customer: &str, attributes: Value) -> Result<Value> {
        self.call(
            reqwest::Method::PUT,
            &format!("/customers/{customer}/attributes"),
            Some(json!({ "attributes": attributes })),
        )
        .await
    }

    /// `GET /segments/{name}/customers`, the first page.
    pub async fn segment_members(&self, segment: &str) -> Result<Vec<Value>> {
        let page = self
            .call(reqwest::Method::GET, &format!("/segments/{segment}/customers"), None)
            .await?;
        Ok(page["customers"].as_array().cloned().unwrap_or_default())
    }

    /// `GET /reports/summary` with this query (`from=…&to=…&channel=sms`).
    pub async fn report(&self, query: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, &format!("/reports/summary?{query}"), None)
            .await
    }

    /// Prints the service report of `from`..`to` (UTC dates): per channel the conversations
    /// opened and resolved, the median first response and resolution times; then the top
    /// reasons, confirmed and suggested.
    pub async fn print_report(&self, from: &str, to: &str) -> Result<()> {
        let range = format!("from={from}&to={to}");
        let asked = std::time::Instant::now();
        let all = self.report(&range).await?;
        println!(
            "    service report {from} .. {to} (one Query per day: {} items, {} read units; answered in {} ms)",
            all["read"]["items"],
            all["read"]["read_units"],
            asked.elapsed().as_millis()
        );
        println!(
            "    {:<10} {:>8} {:>8} {:>14} {:>14} {:>10}",
            "channel", "opened", "resolved", "first response", "resolution", "replies"
        );
        let minutes = |d: &Value| d["median_seconds"].as_i64().map_or_else(|| "-".to_owned(), duration);
        for channel in [
            "sms",
            "whatsapp",
            "email",
            "chat",
            "messenger",
            "instagram",
            "x",
            "telegram",
        ] {
            let numbers = self.report(&format!("{range}&channel={channel}")).await?;
            let opened = numbers["conversations_opened"].as_u64().unwrap_or(0);
            let resolved = numbers["conversations_resolved"].as_u64().unwrap_or(0);
            if opened == 0 && resolved == 0 {
                continue;
            }
            println!(
                "    {:<10} {:>8} {:>8} {:>14} {:>14} {:>10}",
                channel,
                opened,
                resolved,
                minutes(&numbers["first_response"]),
                minutes(&numbers["resolution"]),
                numbers["outbound_messages"].as_u64().unwrap_or(0),
            );
        }
        println!(
            "    {:<10} {:>8} {:>8} {:>14} {:>14} {:>10}",
            "all",
            all["conversations_opened"].as_u64().unwrap_or(0),
            all["conversations_resolved"].as_u64().unwrap_or(0),
            minutes(&all["first_response"]),
            minutes(&all["resolution"]),
            all["outbound_messages"].as_u64().unwrap_or(0),
        );
        let csat = &all["csat"];
        if csat["surveys"].as_u64().unwrap_or(0) > 0 {
            println!(
                "    CSAT: {} surveys, {} answered, average {}, ratings 1-5 {}",
                csat["surveys"],
                csat["responses"],
                csat["average"]
                    .as_f64()
                    .map_or_else(|| "-".to_owned(), |a| format!("{a:.1}")),
                csat["ratings"]
            );
        }
        let reasons = all["reasons"].as_array().cloned().unwrap_or_default();
        if !reasons.is_empty() {
            println!("    top reasons (conversations resolved: confirmed / only suggested)");
            for reason in reasons.iter().take(5) {
                println!(
                    "      {:<20} {:<18} {} / {}",
                    reason["code"].as_str().unwrap_or_default(),
                    reason["name"].as_str().unwrap_or_default(),
                    reason["confirmed"],
                    reason["suggested"]
                );
            }
        }
        Ok(())
    }

    /// The whole timeline, newest first, page by page.
    pub async fn timeline(&self, customer: &str) -> Result<Vec<Value>> {
        let mut entries = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .call(
                    reqwest::Method::GET,
                    &format!("/customers/{customer}/timeline?limit=100{cursor}"),
                    None,
                )
                .await?;
            entries.extend(page["entries"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return Ok(entries),
            }
        }
    }

    /// Prints a customer found by `identifier`: identifiers with their evidence, the timeline
    /// conversation by conversation (oldest first), and open link suggestions.
    pub async fn print_customer(&self, identifier: &str) -> Result<()> {
        let profile = self.find(identifier).await?;
        let id = profile["customer_id"].as_str().unwrap_or_default();
        let members = profile["members"].as_array().map_or(0, Vec::len);
        println!(
            "\n    customer {id}{}  —  {} interactions, first seen {}, last seen {}",
            if members > 0 {
                format!(" (merged from {} customers)", members + 1)
            } else {
                String::new()
            },
            profile["interaction_count"],
            profile["first_seen_at"].as_str().unwrap_or("-"),
            profile["last_seen_at"].as_str().unwrap_or("-"),
        );
        println!("      identifiers:");
        for identifier in profile["identifiers"].as_array().into_iter().flatten() {
            println!(
                "        {:<48} {:<8} {}{}",
                identifier["identifier"].as_str().unwrap_or_default(),
                identifier["evidence"].as_str().unwrap_or_default(),
                identifier["source"].as_str().unwrap_or_default(),
                if identifier["owned"] == json!(false) {
                    "  (claim, routes nothing)"
                } else {
                    ""
                }
            );
        }
        let mut entries = self.timeline(id).await?;
        entries.reverse();
        // Conversations in order of their first interaction.
        let mut conversations: Vec<(String, Vec<&Value>)> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for entry in &entries {
            let conversation = entry["conversation_id"].as_str().unwrap_or("-").to_owned();
            let i = *index.entry(conversation.clone()).or_insert_with(|| {
                conversations.push((conversation, Vec::new()));
                conversations.len() - 1
            });
            conversations[i].1.push(entry);
        }
        for (conversation, entries) in &conversations {
            let mut channels: Vec<&str> = entries.iter().filter_map(|e| e["channel"].as_str()).collect();
            channels.dedup();
            println!("      conversation {conversation}  ({})", channels.join(" → "));
            for entry in entries {
                let text = entry["text"].as_str().unwrap_or("");
                let mut text: String = text
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(70)
                    .collect();
                if let Some(template) = entry["attributes"]["whatsapp_template"].as_str() {
                    text = format!("(template {template})");
                }
                match entry["attachments"].as_array().map_or(0, Vec::len) {
                    0 => {}
                    1 => text.push_str("  [1 attachment]"),
                    n => text.push_str(&format!("  [{n} attachments]")),
                }
                let mark = match (
                    entry["deleted_at"].is_string(),
                    entry["edited_at"].is_string(),
                    entry["kind"].as_str(),
                ) {
                    (true, _, _) => "  (deleted by the customer)",
                    (_, true, _) => "  (edited by the customer)",
                    (_, _, Some("automated")) => "  (automated)",
                    _ => "",
                };
                let mark = match entry["delivery"]["status"].as_str() {
                    Some(status) => {
                        let reason = entry["delivery"]["error"]["reason"].as_str().unwrap_or_default();
                        let author = entry["author"].as_str().unwrap_or_default();
                        let author = author.rsplit('/').next().unwrap_or(author);
                        if reason.is_empty() {
                            format!("  [{status}, by {author}]")
                        } else {
                            format!("  [{status}: {reason}]")
                        }
                    }
                    None => mark.to_owned(),
                };
                println!(
                    "        {}  {:<9} {:<8} {text}{mark}",
                    entry["occurred_at"].as_str().unwrap_or_default(),
                    entry["channel"].as_str().unwrap_or_default(),
                    entry["direction"].as_str().unwrap_or_default(),
                );
            }
        }
        for suggestion in self.suggestions(id).await? {
            if suggestion["status"] == "open" {
                println!(
                    "      suggestion {}: customer {} claims {} ({}), not merged — an agent may accept or reject it",
                    suggestion["suggestion_id"].as_str().unwrap_or_default(),
                    suggestion["claimant"].as_str().unwrap_or_default(),
                    suggestion["identifier"].as_str().unwrap_or_default(),
                    suggestion["source"].as_str().unwrap_or_default(),
                );
            }
        }
        Ok(())
    }
}

/// `cargo xtask timeline <identifier> [--api URL]`.
/// A duration for people: minutes under two hours, hours under two days, then days.
fn duration(seconds: i64) -> String {
    let minutes = seconds as f64 / 60.0;
    if minutes < 120.0 {
        format!("{minutes:.1} min")
    } else if minutes < 2880.0 {
        format!("{:.1} h", minutes / 60.0)
    } else {
        format!("{:.1} days", minutes / 1440.0)
    }
}

/// The local stack's API, or `--api URL`.
fn api_base(args: &[String]) -> Result<String> {
    match args.iter().position(|a| a == "--api").and_then(|i| args.get(i + 1)) {
        Some(url) => Ok(url.clone()),
        None => Ok(std::fs::read_to_string(local_api_file())
            .map(|s| s.trim().to_owned())
            .map_err(
                |_| "no local stack is serving: run `cargo xtask demo --serve` in another terminal, or pass --api URL",
            )?),
    }
}

/// `cargo xtask report [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--api URL]`: the service report
/// of a running stack (default: the last 7 days).
pub async fn report(args: &[String]) -> Result<()> {
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let today = chrono::Utc::now().date_naive();
    let to = value("--to").unwrap_or_else(|| today.to_string());
    let from = value("--from").unwrap_or_else(|| (today - chrono::TimeDelta::days(6)).to_string());
    TimelineClient::new(api_base(args)?).print_report(&from, &to).await
}

pub async fn run(args: &[String]) -> Result<()> {
    let identifier = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .ok_or("usage: cargo xtask timeline <identifier, e.g. phone:+14155550100> [--api URL]")?;
    TimelineClient::new(api_base(args)?).print_customer(identifier).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_in_minutes_hours_or_days() {
        assert_eq!(super::duration(30), "0.5 min");
        assert_eq!(super::duration(3 * 3600), "3.0 h");
        assert_eq!(super::duration(604_800), "7.0 days");
    }

    #[test]
    fn identifiers_are_query_encoded() {
        assert_eq!(super::encode("phone:+14155550100"), "phone%3A%2B14155550100");
        assert_eq!(super::encode("email:ada@example.com"), "email%3Aada%40example.com");
    }
}
