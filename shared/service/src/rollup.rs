//! Rollups: per day, counters and fixed-bucket histograms kept at write time, so that a report
//! reads O(days × cells) small items and never a timeline. Pure: what an interaction or a
//! resolution adds to which cell, and what a report makes of the cells it reads. Every addition
//! is a sum, so any order of the same events gives the same rollups (a property test says so);
//! an interaction is rolled up once, when it is first recorded (a redelivery is a duplicate and
//! adds nothing).
//!
//! Cells of a day (the sort keys under `ROLLUP#<day>`):
//! - `ch#<channel>`: `opened` (conversations that opened on the channel), `inbound` (customer
//!   messages on it), `outbound` (agent replies on it), `frt_*` (first responses of conversations
//!   opened on it), `reply_*` (waits of customers who wrote on it);
//! - `res#<channel>#<assignee>`: per resolution, `resolved`, `res_*` (opened → resolved) and
//!   `rfrt_*` (the first response of the conversation resolved), under the channel it opened on;
//! - `reason#<c|s>:<code>#<channel>#<assignee>`: the same, once per confirmed (`c:`) or merely
//!   suggested (`s:`) reason of the conversation resolved.
//!
//! Satisfaction surveys count in the resolution's cells (its day, channel, assignee and
//! confirmed reasons): `surveys` (sent), `csat_<n>` (ratings of n given) and
//! `csat_replaced_<n>` (ratings of n a later answer to the same survey replaced), so the
//! latest rating of each survey counts, and every count only grows.
//!
//! Histogram attributes are `<metric>_<bucket>` in wall time and `<metric>_bh_<bucket>` in
//! business hours. A day is the UTC date of the event (the interaction's time, the resolution's).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use throughline_model::{Channel, Interaction};

use crate::hours::BusinessHours;
use crate::{Observation, is_agent_reply, is_customer_message};

/// Upper bounds of the histogram buckets, in seconds; the last bucket has none.
pub const BUCKET_BOUNDS: [i64; 15] = [
    60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 14_400, 28_800, 43_200, 86_400, 172_800, 345_600, 604_800,
];

/// The bucket a duration falls in (a bound belongs to the bucket it closes).
pub fn bucket(duration: TimeDelta) -> usize {
    let seconds = (duration.num_milliseconds().max(0) + 999) / 1000;
    BUCKET_BOUNDS
        .iter()
        .position(|bound| seconds <= *bound)
        .unwrap_or(BUCKET_BOUNDS.len())
}

/// The metrics kept as histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// First response (by the channel the conversation opened on).
    FirstResponse,
    /// Each wait ended by an agent reply (by the channel the customer wrote on).
    Reply,
    /// Opened → resolved (resolution cells).
    Resolution,
    /// The first response of a resolved conversation (resolution cells).
    ResolvedFirstResponse,
}

impl Metric {
    fn prefix(self, business: bool) -> &'static str {
        match (self, business) {
            (Metric::FirstResponse, false) => "frt_",
            (Metric::FirstResponse, true) => "frt_bh_",
            (Metric::Reply, false) => "reply_",
            (Metric::Reply, true) => "reply_bh_",
            (Metric::Resolution, false) => "res_",
            (Metric::Resolution, true) => "res_bh_",
            (Metric::ResolvedFirstResponse, false) => "rfrt_",
            (Metric::ResolvedFirstResponse, true) => "rfrt_bh_",
        }
    }
}

/// What to add to one cell.
pub type Adds = BTreeMap<String, u64>;

/// Additions to the cells of one day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayAdds {
    pub cells: BTreeMap<(NaiveDate, String), Adds>,
}

impl DayAdds {
    fn add(&mut self, day: NaiveDate, cell: String, attribute: String, n: u64) {
        *self.cells.entry((day, cell)).or_default().entry(attribute).or_default() += n;
    }

    fn add_time(&mut self, day: NaiveDate, cell: &str, metric: Metric, wall: TimeDelta, business: TimeDelta) {
        self.add(
            day,
            cell.to_owned(),
            format!("{}{}", metric.prefix(false), bucket(wall)),
            1,
        );
        self.add(
            day,
            cell.to_owned(),
            format!("{}{}", metric.prefix(true), bucket(business)),
            1,
        );
    }

    /// Every addition of `other` too.
    pub fn merge(&mut self, other: DayAdds) {
        for ((day, cell), adds) in other.cells {
            for (attribute, n) in adds {
                self.add(day, cell.clone(), attribute, n);
            }
        }
    }
}

fn channel_cell(channel: Channel) -> String {
    format!("ch#{}", channel.as_str())
}

/// What recording `interaction` adds (its lifecycle `observed`). Only customer messages and
/// agent replies count.
pub fn interaction_adds(interaction: &Interaction, observed: &Observation, hours: &BusinessHours) -> DayAdds {
    let mut adds = DayAdds::default();
    let at = interaction.occurred_at;
    let day = at.date_naive();
    let counted = if is_customer_message(interaction) {
        "inbound"
    } else if is_agent_reply(interaction) {
        "outbound"
    } else {
        return adds;
    };
    adds.add(day, channel_cell(interaction.channel), counted.to_owned(), 1);
    let opened_on = observed.conversation_channel.unwrap_or(interaction.channel);
    if observed.opened {
        adds.add(day, channel_cell(opened_on), "opened".to_owned(), 1);
    }
    if let Some(answer) = observed.answered {
        let business = hours.within(at - answer.waited, at);
        adds.add_time(
            day,
            &channel_cell(answer.channel),
            Metric::Reply,
            answer.waited,
            business,
        );
        if answer.first {
            adds.add_time(
                day,
                &channel_cell(opened_on),
                Metric::FirstResponse,
                answer.waited,
                business,
            );
        }
    }
    adds
}

/// A resolved conversation, as its rollup needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub at: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
    pub channel: Channel,
    pub assignee: Option<String>,
    /// Its confirmed reasons' codes.
    pub confirmed: Vec<String>,
    /// Its reasons only suggested.
    pub suggested: Vec<String>,
    /// Its first customer message and first response, when it had both.
    pub first_response: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The cell-name part of an assignee: `-` for nobody (`#` cannot occur in a principal's name
/// as cells are split on it, so it is replaced).
fn assignee_part(assignee: Option<&str>) -> String {
    assignee.map_or_else(|| "-".to_owned(), |a| a.replace('#', "_"))
}

/// The cells of a resolution: its (channel, assignee) cell, then one per confirmed and per
/// suggested reason.
fn resolution_cells(
    channel: Channel,
    assignee: Option<&str>,
    confirmed: &[String],
    suggested: &[String],
) -> Vec<String> {
    let channel = channel.as_str();
    let assignee = assignee_part(assignee);
    let mut cells = vec![format!("res#{channel}#{assignee}")];
    for (kind, codes) in [("c", confirmed), ("s", suggested)] {
        cells.extend(
            codes
                .iter()
                .map(|code| format!("reason#{kind}:{code}#{channel}#{assignee}")),
        );
    }
    cells
}

/// What resolving a conversation adds.
pub fn resolution_adds(resolved: &Resolved, hours: &BusinessHours) -> DayAdds {
    let mut adds = DayAdds::default();
    let day = resolved.at.date_naive();
    let cells = resolution_cells(
        resolved.channel,
        resolved.assignee.as_deref(),
        &resolved.confirmed,
        &resolved.suggested,
    );
    let resolution = (resolved.at - resolved.opened_at).max(TimeDelta::zero());
    let business = hours.within(resolved.opened_at, resolved.at);
    for cell in &cells {
        adds.add(day, cell.clone(), "resolved".to_owned(), 1);
        adds.add_time(day, cell, Metric::Resolution, resolution, business);
        if let Some((asked, answered)) = resolved.first_response {
            let waited = (answered - asked).max(TimeDelta::zero());
            adds.add_time(
                day,
                cell,
                Metric::ResolvedFirstResponse,
                waited,
                hours.within(asked, answered),
            );
        }
    }
    adds
}

/// A surveyed resolution, as its rollup cells name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surveyed {
    pub resolved_at: DateTime<Utc>,
    /// The channel the conversation opened on.
    pub channel: Channel,
    pub assignee: Option<String>,
    /// Its confirmed reasons' codes.
    pub confirmed: Vec<String>,
}

/// What happened to a survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveyEvent {
    /// It went out.
    Sent,
    /// The customer rated (`replaces`: their earlier rating of the same survey).
    Rated { rating: u8, replaces: Option<u8> },
}

/// What a survey's event adds: to the resolution's cells, on its day.
pub fn survey_adds(surveyed: &Surveyed, event: SurveyEvent) -> DayAdds {
    let mut adds = DayAdds::default();
    let day = surveyed.resolved_at.date_naive();
    // The resolution's cells but its suggested reasons' (CSAT is by confirmed reason).
    for cell in resolution_cells(surveyed.channel, surveyed.assignee.as_deref(), &surveyed.confirmed, &[]) {
        match event {
            SurveyEvent::Sent => adds.add(day, cell, "surveys".to_owned(), 1),
            SurveyEvent::Rated { rating, replaces } => {
                adds.add(day, cell.clone(), format!("csat_{rating}"), 1);
                if let Some(replaced) = replaces {
                    adds.add(day, cell, format!("csat_replaced_{replaced}"), 1);
                }
            }
        }
    }
    adds
}

/// Satisfaction of the conversations resolved: surveys sent and the latest rating of each
/// survey answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Csat {
    pub surveys: u64,
    /// Surveys whose latest rating is 1, 2, 3, 4, 5.
    pub ratings: [u64; 5],
}

impl Csat {
    fn take(&mut self, cell: &Adds) {
        self.surveys += cell.get("surveys").copied().unwrap_or(0);
        for (n, count) in self.ratings.iter_mut().enumerate() {
            let given = cell.get(&format!("csat_{}", n + 1)).copied().unwrap_or(0);
            let replaced = cell.get(&format!("csat_replaced_{}", n + 1)).copied().unwrap_or(0);
            // Per cell a replaced rating was given before it was replaced: never below zero.
            *count += given.saturating_sub(replaced);
        }
    }

    /// Surveys answered with a rating.
    pub fn responses(&self) -> u64 {
        self.ratings.iter().sum()
    }

    /// The mean rating; `None` without any.
    pub fn average(&self) -> Option<f64> {
        let responses = self.responses();
        (responses > 0).then(|| {
            let total: u64 = self.ratings.iter().zip(1u64..).map(|(count, r)| count * r).sum();
            total as f64 / responses as f64
        })
    }

    /// The share of ratings of 4 or 5 (the CSAT score); `None` without any.
    pub fn satisfied(&self) -> Option<f64> {
        let responses = self.responses();
        (responses > 0).then(|| (self.ratings[3] + self.ratings[4]) as f64 / responses as f64)
    }

    /// Responses per survey sent; `None` before any was sent.
    pub fn response_rate(&self) -> Option<f64> {
        (self.surveys > 0).then(|| self.responses() as f64 / self.surveys as f64)
    }
}

/// A histogram read back: bucket → count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram(pub BTreeMap<usize, u64>);

impl Histogram {
    pub fn count(&self) -> u64 {
        self.0.values().sum()
    }

    /// The `q` quantile (0 < q ≤ 1), interpolated linearly within its bucket (the last bucket,
    /// which has no upper bound, answers its lower bound); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<TimeDelta> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0u64;
        for (&bucket, &n) in &self.0 {
            if (below + n) as f64 >= rank {
                let lower = if bucket == 0 { 0 } else { BUCKET_BOUNDS[bucket - 1] };
                let Some(upper) = BUCKET_BOUNDS.get(bucket) else {
                    return Some(TimeDelta::seconds(lower));
                };
                let within = (rank - below as f64) / n as f64;
                return Some(TimeDelta::milliseconds(
                    ((lower as f64 + within * (*upper - lower) as f64) * 1000.0).round() as i64,
                ));
            }
            below += n;
        }
        None
    }
}

/// The median and 90th percentile of a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Distribution {
    pub count: u64,
    pub median: Option<TimeDelta>,
    pub p90: Option<TimeDelta>,
}

impl From<&Histogram> for Distribution {
    fn from(histogram: &Histogram) -> Self {
        Self {
            count: histogram.count(),
            median: histogram.quantile(0.5),
            p90: histogram.quantile(0.9),
        }
    }
}

/// What a report is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    pub channel: Option<Channel>,
    /// Conversations with this confirmed reason.
    pub reason: Option<String>,
    pub assignee: Option<String>,
    pub business_hours: bool,
}

impl ReportFilter {
    /// Whether the numbers kept only per resolution are asked for (a reason or an assignee).
    fn per_resolution(&self) -> bool {
        self.reason.is_some() || self.assignee.is_some()
    }
}

/// One reason's resolved conversations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReasonCount {
    pub code: String,
    pub confirmed: u64,
    pub suggested: u64,
}

/// The numbers of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Kept per channel only: `None` when the report is by reason or assignee.
    pub conversations_opened: Option<u64>,
    pub conversations_resolved: u64,
    pub inbound_messages: Option<u64>,
    pub outbound_messages: Option<u64>,
    /// By reason or assignee: of the conversations resolved.
    pub first_response: Distribution,
    pub reply: Option<Distribution>,
    pub resolution: Distribution,
    /// Reasons of the conversations resolved, most frequent confirmed first.
    pub reasons: Vec<ReasonCount>,
    /// Satisfaction surveys of the conversations resolved.
    pub csat: Csat,
}

fn histogram_of(cell: &Adds, prefix: &str, into: &mut Histogram) {
    for (attribute, n) in cell {
        if let Some(bucket) = attribute.strip_prefix(prefix).and_then(|b| b.parse::<usize>().ok()) {
            *into.0.entry(bucket).or_default() += n;
        }
    }
}

/// The summary of the cells read (of any days). Pure.
pub fn summarize<'a>(cells: impl IntoIterator<Item = (&'a str, &'a Adds)>, filter: &ReportFilter) -> Summary {
    let business = filter.business_hours;
    let channel_ok = |c: &str| filter.channel.is_none_or(|wanted| wanted.as_str() == c);
    let assignee_ok = |a: &str| {
        filter
            .assignee
            .as_deref()
            .is_none_or(|wanted| assignee_part(Some(wanted)) == a)
    };
    let mut summary = Summary::default();
    let (mut opened, mut inbound, mut outbound) = (0, 0, 0);
    let (mut frt, mut reply, mut resolution, mut resolved_frt) = Default::default();
    let mut reasons: BTreeMap<String, ReasonCount> = BTreeMap::new();
    let count = |cell: &Adds, name: &str| cell.get(name).copied().unwrap_or(0);
    for (sk, cell) in cells {
        let parts: Vec<&str> = sk.split('#').collect();
        match parts.as_slice() {
            ["ch", channel] if channel_ok(channel) => {
                opened += count(cell, "opened");
                inbound += count(cell, "inbound");
                outbound += count(cell, "outbound");
                histogram_of(cell, Metric::FirstResponse.prefix(business), &mut frt);
                histogram_of(cell, Metric::Reply.prefix(business), &mut reply);
            }
            ["res", channel, assignee] if filter.reason.is_none() && channel_ok(channel) && assignee_ok(assignee) => {
                summary.conversations_resolved += count(cell, "resolved");
                histogram_of(cell, Metric::Resolution.prefix(business), &mut resolution);
                histogram_of(cell, Metric::ResolvedFirstResponse.prefix(business), &mut resolved_frt);
                summary.csat.take(cell);
            }
            ["reason", reason, channel, assignee] if channel_ok(channel) && assignee_ok(assignee) => {
                let Some((kind, code)) = reason.split_once(':') else {
                    continue;
                };
                let entry = reasons.entry(code.to_owned()).or_insert_with(|| ReasonCount {
                    code: code.to_owned(),
                    ..ReasonCount::default()
                });
                match kind {
                    "c" => entry.confirmed += count(cell, "resolved"),
                    _ => entry.suggested += count(cell, "resolved"),
                }
                if kind == "c" && filter.reason.as_deref() == Some(code) {
                    summary.csat.take(cell);
                    summary.conversations_resolved += count(cell, "resolved");
                    histogram_of(cell, Metric::Resolution.prefix(business), &mut resolution);
                    histogram_of(cell, Metric::ResolvedFirstResponse.prefix(business), &mut resolved_frt);
                }
            }
            _ => {}
        }
    }
    summary.resolution = Distribution::from(&resolution);
    if filter.per_resolution() {
        summary.first_response = Distribution::from(&resolved_frt);
    } else {
        summary.conversations_opened = Some(opened);
        summary.inbound_messages = Some(inbound);
        summary.outbound_messages = Some(outbound);
        summary.first_response = Distribution::from(&frt);
        summary.reply = Some(Distribution::from(&reply));
    }
    let mut reasons: Vec<ReasonCount> = reasons
        .into_values()
        .filter(|r| filter.reason.as_deref().is_none_or(|wanted| wanted == r.code))
        .collect();
    reasons.sort_by(|a, b| (b.confirmed, b.suggested, &a.code).cmp(&(a.confirmed, a.suggested, &b.code)));
    summary.reasons = reasons;
    summary
}
