//! Lambda entry point: `throughline_rating_page::handle`, with the page its configuration builds.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    throughline_edge::serve_http!(
        throughline_rating_page::RatingPage::from_env,
        throughline_rating_page::handle
    )
}
