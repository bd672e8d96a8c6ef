//! Customer feedback (issue 18, started), pure: `rating` says whether a customer's message is a
//! 1–5 rating of the service (digits, stars, a locale's words, a survey button's payload), and
//! `token` makes and checks the signed, expiring reference a rating page is reached by, and
//! `survey` decides whether and as what a survey goes out after a resolution. Sending surveys
//! and recording answers build on these.

pub mod rating;
pub mod survey;
pub mod token;

pub use rating::{Rating, parse_rating};
pub use token::{FeedbackToken, TokenError};
