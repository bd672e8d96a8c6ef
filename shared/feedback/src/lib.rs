//! Customer feedback (issue 18), pure: `rating` says whether a customer's message is a 1–5
//! rating of the service (digits, stars, a locale's words, a survey button's payload), `token`
//! makes and checks the signed, expiring reference a rating page is reached by, `survey`
//! decides whether and as what a survey goes out after a resolution, `answers` which of the
//! customer's messages answer a survey that is out (`OpenSurvey`, kept on the group's root), and
//! `link` what a rating page link leads to and the answer a page submission is.

pub mod answers;
pub mod link;
pub mod rating;
pub mod survey;
pub mod token;

pub use answers::{OpenSurvey, RecordedAnswer, recorded_answer};
pub use link::LinkedSurvey;
pub use rating::{Rating, parse_rating};
pub use token::{FeedbackToken, TokenError, signing_keys};
