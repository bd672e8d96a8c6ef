//! Satisfaction surveys on the group's root: the one out (`open_survey`, written when it is
//! sent; a later one replaces it), which the writer reads with every interaction to recognize
//! answers (`ingest`), and their rollups (sent, and each rating, on the resolution's cells).
//! An email or web chat survey's rating page link leads to a `SURVEY#` item of its own
//! (`linked_survey`): the page knows only the survey's id.

use chrono::TimeDelta;
use throughline_feedback::{LinkedSurvey, OpenSurvey, RecordedAnswer};
use throughline_service::rollup::{SurveyEvent, Surveyed, survey_adds};

use crate::items::{Expr, json_attr, key_item, keys, number_value, string_value, to_json, tx_put, tx_update};
use crate::{CustomerId, StoreError, TimelineStore};

/// How long a linked survey's item outlives its link (the table's TTL removes it then; the
/// page refuses an expired link by its signature alone, so this is only tidiness).
const LINK_KEPT_AFTER_EXPIRY: TimeDelta = TimeDelta::days(1);

/// Tries of the open survey's transaction with its link.
const LINK_ATTEMPTS: usize = 3;

/// A survey's resolution, as its rollup cells name it.
fn surveyed(survey: &OpenSurvey) -> Surveyed {
    Surveyed {
        resolved_at: survey.resolved_at,
        channel: survey.resolved_channel,
        assignee: survey.assignee.clone(),
        confirmed: survey.reasons.clone(),
    }
}

impl TimelineStore {
    /// Makes `survey` the group's open survey, on its root `root`: only if that is still a
    /// root, not erased, and the survey is not there already (`false`: it is — this survey was
    /// opened before — or the group changed). Its version goes up, so that a writer that
    /// remembers the root from its last commit reads it again. A survey answered on the rating
    /// page gets its `link` item in the same transaction.
    pub async fn open_survey(
        &self,
        root: &CustomerId,
        survey: &OpenSurvey,
        link: Option<&LinkedSurvey>,
    ) -> Result<bool, StoreError> {
        let open = tx_update(
            &self.table,
            keys::profile(root),
            "SET #survey = :survey, #survey_id = :id ADD #version :one",
            Some(
                "attribute_exists(pk) AND attribute_not_exists(erased_at) \
                 AND (attribute_not_exists(#root) OR #root = :me) \
                 AND (attribute_not_exists(#survey_id) OR #survey_id <> :id)",
            ),
            Expr::new()
                .name("#survey", "survey")
                .name("#survey_id", "survey_id")
                .name("#version", "version")
                .name("#root", "root")
                .value(":survey", to_json(survey))
                .value(":id", string_value(&survey.id))
                .value(":me", string_value(root.as_str()))
                .value(":one", number_value(1)),
        )?;
        let Some(link) = link else {
            return self.write_one(open).await;
        };
        let mut item = key_item(keys::linked_survey(&link.id));
        item.insert("survey".into(), to_json(link));
        let expires = (link.expires_at + LINK_KEPT_AFTER_EXPIRY).timestamp().max(0) as u64;
        item.insert("expires_at".into(), number_value(expires));
        let put = tx_put(&self.table, item, Some("attribute_not_exists(pk)"), Expr::new())?;
        // A transaction is also cancelled when a writer's commit on the root lands at the same
        // moment (a conflict, not a refusal): tried again a few times, as the single UpdateItem
        // without a link never needs to be. A refusal stays a refusal on every try.
        for attempt in 1..=LINK_ATTEMPTS {
            if self.transact(vec![open.clone(), put.clone()]).await? {
                return Ok(true);
            }
            crate::backoff(attempt).await;
        }
        Ok(false)
    }

    /// What the rating page link of survey `survey_id` leads to; `None` when there is none (the
    /// survey was not sent by email or chat, its item expired, or its customer was erased).
    pub async fn linked_survey(&self, survey_id: &str) -> Result<Option<LinkedSurvey>, StoreError> {
        let Some(item) = self.get(keys::linked_survey(survey_id), false).await? else {
            return Ok(None);
        };
        json_attr(&item, "survey")
    }

    /// Counts a survey sent, on its resolution's cells (as every rollup: logged if it fails).
    pub async fn roll_up_survey_sent(&self, survey: &OpenSurvey) {
        self.roll_up_or_log(survey_adds(&surveyed(survey), SurveyEvent::Sent))
            .await;
    }

    /// Counts an answer's rating (a remark alone counts nothing), when the group still holds
    /// the survey it answers.
    pub(crate) async fn roll_up_answer(&self, answer: &RecordedAnswer) {
        let (Some(survey), Some(feedback)) = (&answer.survey, &answer.interaction.feedback) else {
            return;
        };
        let Some(rating) = feedback.rating else {
            return;
        };
        let event = SurveyEvent::Rated {
            rating,
            replaces: feedback.replaces,
        };
        self.roll_up_or_log(survey_adds(&surveyed(survey), event)).await;
    }
}
