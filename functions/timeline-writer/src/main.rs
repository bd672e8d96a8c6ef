//! Lambda entry point: `throughline_timeline_writer::handle` over each SQS batch, with the
//! writer its configuration builds.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    throughline_edge::serve_event!(
        throughline_timeline_writer::Writer::from_env,
        throughline_timeline_writer::serve
    )
}
