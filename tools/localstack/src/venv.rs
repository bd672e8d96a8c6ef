//! The project-local Python virtualenv (`.venv`) holding moto, cargo-lambda and cfn-lint, as
//! pinned in `tools/requirements.txt`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, workspace_root};

const REQUIREMENTS: &str = "tools/requirements.txt";
/// Written after a successful install: the requirements it installed.
const STAMP: &str = ".throughline-requirements";

#[derive(Debug, Clone)]
pub struct Venv {
    root: PathBuf,
}

impl Venv {
    /// Starts `tools/<script>` with this virtualenv's Python, serving on 127.0.0.1:`port`, its
    /// output in `log`. It exits when the returned stdin closes: when the process that started
    /// it exits, even one that never drops it (a test binary's shared server).
    pub fn spawn_tool(
        &self,
        script: &str,
        port: u16,
        extra_args: &[&std::ffi::OsStr],
        log: &Path,
    ) -> Result<(std::process::Child, std::process::ChildStdin)> {
        use std::process::Stdio;
        let mut child = Command::new(self.bin("python"))
            .arg(workspace_root().join("tools").join(script))
            .args(["-H", "127.0.0.1", "-p", &port.to_string(), "--exit-with-stdin"])
            .args(extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(std::fs::File::create(log)?))
            .stderr(Stdio::from(std::fs::File::create(log)?))
            .spawn()
            .map_err(|e| format!("could not start tools/{script} with {}: {e}", self.root().display()))?;
        let lifeline = child.stdin.take().ok_or("the tool's stdin is not piped")?;
        Ok((child, lifeline))
    }

    pub fn path() -> PathBuf {
        std::env::var_os("THROUGHLINE_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".venv"))
    }

    /// Creates the virtualenv and installs the pinned tools when missing or out of date.
    pub fn ensure() -> Result<Self> {
        let root = Self::path();
        let requirements = std::fs::read_to_string(workspace_root().join(REQUIREMENTS))?;
        if std::fs::read_to_string(root.join(STAMP)).ok().as_deref() == Some(requirements.as_str()) {
            return Ok(Self { root });
        }
        eprintln!(
            "==> setting up {} (moto, cargo-lambda, cfn-lint); first run takes a minute",
            root.display()
        );
        if !root.join("bin/python").exists() {
            let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
            run(
                Command::new(&python).args(["-m", "venv"]).arg(&root),
                "create the virtualenv",
            )?;
        }
        let pip = root.join("bin/pip");
        run(
            Command::new(&pip).args(["install", "--quiet", "--upgrade", "pip"]),
            "upgrade pip",
        )?;
        run(
            Command::new(&pip)
                .args(["install", "--quiet", "-r"])
                .arg(workspace_root().join(REQUIREMENTS)),
            "install tools/requirements.txt",
        )?;
        std::fs::write(root.join(STAMP), requirements)?;
        Ok(Self { root })
    }

    /// The virtualenv as it is, or an error saying how to create it. Tests use this: they must
    /// fail loudly, never install behind the user's back or skip.
    pub fn require() -> Result<Self> {
        let root = Self::path();
        for tool in ["bin/python", "bin/cargo-lambda"] {
            if !root.join(tool).exists() {
                return Err(format!(
                    "{} is missing: these tests need the moto emulator and cargo-lambda from the project's \
                     virtualenv. Run `cargo xtask test` (or `cargo xtask setup`) to install them.",
                    root.join(tool).display()
                )
                .into());
            }
        }
        let requirements = std::fs::read_to_string(workspace_root().join(REQUIREMENTS))?;
        if std::fs::read_to_string(root.join(STAMP)).ok().as_deref() != Some(requirements.as_str()) {
            return Err(format!(
                "{} holds other versions than {REQUIREMENTS} pins. Run `cargo xtask setup` (or `cargo xtask \
                 test`) to update it.",
                root.display()
            )
            .into());
        }
        Ok(Self { root })
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.root.join("bin").join(name)
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.root.join("bin")
    }

    /// PATH with the virtualenv first, so `cargo lambda` finds `cargo-lambda` and zig.
    pub fn path_env(&self) -> std::ffi::OsString {
        let mut paths = vec![self.bin_dir()];
        paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
        std::env::join_paths(paths).expect("PATH entries are joinable")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Runs a command to completion; a non-zero exit is an error saying what failed.
pub fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().map_err(|e| format!("could not {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("could not {what}: {status}").into())
    }
}
