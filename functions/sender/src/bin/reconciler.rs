//! Lambda entry point: `throughline_sender::reconcile::serve` on each scheduled run, with the
//! reconciler its configuration builds.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    throughline_edge::serve_event!(
        throughline_sender::reconcile::Reconciler::from_env,
        throughline_sender::reconcile::serve
    )
}
