//! `cargo xtask <command>`: see `cargo xtask help`.

use std::process::Command;

use throughline_localstack::venv::{Venv, run};
use xtask::{Result, workspace_root};

const HELP: &str = "\
cargo xtask <command>

  demo            set up .venv (moto, cargo-lambda, cfn-lint) if needed, run the whole local stack,
                  send the sample events, print the unified timelines, stop everything
  demo --serve    the same, then keep serving the webhook until Ctrl-C
  test            set up .venv if needed, then: cargo fmt --check, clippy -D warnings,
                  cfn-lint infra/template.yaml, cargo test --workspace (unit + emulator-backed e2e)
  timeline IDENTIFIER [--api URL]
                  print a customer found by any identifier (phone:+14155550100, email:ada@example.com,
                  messenger:<page>:<psid>, x::<user id>…) through the timeline API of a running
                  `cargo xtask demo --serve` (or the API at URL): identifiers with their evidence,
                  the timeline conversation by conversation, open link suggestions
  report [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--api URL]
                  print the service report (per channel: conversations, median first response and
                  resolution; top reasons) of a running `cargo xtask demo --serve` (default: 7 days)
  costs           DynamoDB requests and capacity units per ingested interaction (new, known, merged
                  customer, duplicate) and per timeline page, measured against the emulator
  throughput      the writer's time per batch (1 message; 10 for 10 customers; 10 for one customer)
                  and the Meta connector's answer to a 1000-message delivery, with 8 ms added to
                  every DynamoDB call and 15 ms to every SQS call, against the emulator
  setup           only set up .venv
  schema          regenerate the committed JSON Schemas (queue message, chat webhook) from the Rust types
  sign FILE...    re-sign sample Twilio events with the documented test token
  coldstart [N] [--bin-dir DIR] [--only BIN,BIN]
                  build release binaries (or take them from DIR); median cold start (process start →
                  first answered event against a local Runtime API) and peak RSS over N runs
                  (default 20), next to a bare lambda_runtime echo function; --only: just those
                  binaries (and the echo); a binary missing from DIR is an error
";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => xtask::demo::run(args.iter().any(|a| a == "--serve")).await,
        Some("test") => test(),
        Some("setup") => Venv::ensure().map(|_| ()),
        Some("timeline") => xtask::agent::run(&args[1..]).await,
        Some("report") => xtask::agent::report(&args[1..]).await,
        Some("costs") => xtask::costs::run().await,
        Some("throughput") => xtask::throughput::run().await,
        Some("schema") => schema(),
        Some("sign") => throughline_localstack::sign::sign_files(&args[1..]),
        Some("coldstart") => {
            let runs = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(20);
            let option = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
            let bin_dir = option("--bin-dir").map(Into::into);
            let only: Vec<String> = option("--only")
                .map(|list| list.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            xtask::coldstart::run(runs, bin_dir, &only).await
        }
        _ => {
            print!("{HELP}");
            Ok(())
        }
    };
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn test() -> Result<()> {
    let venv = Venv::ensure()?;
    println!("==> cargo fmt --check");
    run(
        cargo().args(["fmt", "--all", "--", "--check"]),
        "pass cargo fmt --check",
    )?;
    println!("==> cargo clippy --all-targets -- -D warnings");
    run(
        cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
        "pass clippy",
    )?;
    println!("==> cfn-lint infra/template.yaml");
    run(
        Command::new(venv.bin("cfn-lint")).arg(workspace_root().join("infra/template.yaml")),
        "pass cfn-lint",
    )?;
    println!("==> cargo test --workspace");
    let mut child = cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("THROUGHLINE_VENV", venv.root())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    // Echo the output and add up every test binary's "test result" line, so the run ends on
    // one total instead of the last crate's doc-tests.
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().expect("piped"))) {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count_before(rest, " passed");
            failed += count_before(rest, " failed");
        }
    }
    let status = child.wait()?;
    println!("\ntests: {passed} passed, {failed} failed");
    if status.success() && failed == 0 {
        Ok(())
    } else {
        Err(format!("the tests failed ({status})").into())
    }
}

/// The number just before `label` in a `test result:` line.
fn count_before(text: &str, label: &str) -> u64 {
    text.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn schema() -> Result<()> {
    for (relative, schema) in [
        ("shared/model/interaction.schema.json", throughline_model::json_schema()),
        (
            "functions/chat/chat-webhook.schema.json",
            throughline_chat::delivery_json_schema(),
        ),
    ] {
        let path = workspace_root().join(relative);
        std::fs::write(&path, schema)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
