//! Customer feedback (issue 18), pure: `rating` says whether a customer's message is a 1–5
//! rating of the service (digits, stars, a locale's words, a survey button's payload), `token`
//! makes and checks the signed, expiring reference a rating page is reached by, `survey`
//! decides whether and as what a survey goes out after a resolution, and `answers` which of the
//! customer's messages answer a survey that is out (`OpenSurvey`, kept on the group's root).

pub mod answers;
pub mod rating;
pub mod survey;
pub mod token;

pub use answers::{OpenSurvey, RecordedAnswer, recorded_answer};
pub use rating::{Rating, parse_rating};
pub use token::{FeedbackToken, TokenError};
