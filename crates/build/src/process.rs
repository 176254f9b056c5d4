//! Running commands: the one place this crate starts processes. Every command is echoed as a
//! shell line before it runs, so a user can rerun or debug any step by hand.

use std::process::{Command, Stdio};

use crate::BuildError;

/// Where progress goes: stderr, so stdout stays free for results.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Print only failures: step titles, command lines and the commands' own output are
    /// suppressed (a failing command's output is kept in its error instead).
    pub quiet: bool,
}

impl Progress {
    /// Announces a step.
    pub fn step(&self, title: &str) {
        if !self.quiet {
            eprintln!("==> {title}");
        }
    }

    /// A detail of the current step.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("    {text}");
        }
    }
}

/// Runs `cmd`; its stdout and stderr go to our stderr (or are captured when quiet). On failure
/// the error carries `hint` and, when quiet, the end of the command's output.
pub(crate) fn run(progress: Progress, cmd: &mut Command, hint: &str) -> Result<(), BuildError> {
    let line = shell_line(cmd);
    if !progress.quiet {
        eprintln!("$ {line}");
    }
    let hint = if hint.is_empty() { String::new() } else { format!("; {hint}") };
    cmd.stdout(if progress.quiet { Stdio::piped() } else { std::io::stderr().into() });
    cmd.stderr(if progress.quiet { Stdio::piped() } else { Stdio::inherit() });
    let out = cmd.output().map_err(|source| BuildError::Spawn {
        command: line.clone(),
        source,
        hint: format!("{hint}; is it installed and on PATH?"),
    })?;
    if !out.status.success() {
        let mut hint = hint;
        if progress.quiet {
            hint.push_str(&output_tail(&out.stderr));
        }
        return Err(BuildError::Command { command: line, status: out.status.to_string(), hint });
    }
    Ok(())
}

/// The last 40 lines of a command's output, for errors of quiet builds.
fn output_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(40)..];
    format!("\n--- output of the command (last {} lines) ---\n{}", tail.len(), tail.join("\n"))
}

/// Runs a `cargo ... --message-format=json-render-diagnostics` build and returns its stdout (the
/// JSON messages). Its stderr is passed on as it comes (unless quiet) and kept for the verdict:
/// errors the compiler reported in a crate's code are [`BuildError::Compile`]; cargo failing to
/// reach the network (to update the index or download a crate) is [`BuildError::Network`]; a
/// failure in the linker carries `linker_hint`; anything else points at cargo's messages. The
/// last two carry the command line.
pub(crate) fn run_cargo_build(
    progress: Progress,
    cmd: &mut Command,
    krate: &str,
    target: &str,
    linker_hint: &str,
) -> Result<String, BuildError> {
    use std::io::{BufRead, Read};
    let line = shell_line(cmd);
    if !progress.quiet {
        eprintln!("$ {line}");
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let spawn_error =
        |source| BuildError::Spawn { command: line.clone(), source, hint: "; is cargo installed and on PATH?".into() };
    let mut child = cmd.spawn().map_err(spawn_error)?;
    let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(BuildError::Output(format!("`{line}`: no pipes to read")));
    };
    // stderr: echoed line by line while the build runs (progress), and kept for the verdict.
    let quiet = progress.quiet;
    let echo = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for l in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if !quiet {
                eprintln!("{l}");
            }
            kept.push(l);
        }
        kept
    });
    let mut out = Vec::new();
    let read = stdout.read_to_end(&mut out);
    let status = child.wait().map_err(spawn_error)?;
    let err_lines = echo.join().unwrap_or_default();
    read.map_err(|e| BuildError::Output(format!("`{line}`: cannot read its output: {e}")))?;
    let stdout = String::from_utf8_lossy(&out).into_owned();
    if status.success() {
        return Ok(stdout);
    }
    // rustc failed on a crate (cargo's summary names it: the program, or one it depends on), and
    // not in the linker.
    let failed = err_lines.iter().find_map(|l| l.strip_prefix("error: could not compile `")?.split('`').next());
    let linker = err_lines.iter().any(|l| l.contains("linking with") || l.contains("linker `"));
    if let Some(failed) = failed.filter(|_| !linker) {
        let krate =
            if failed.replace('-', "_") == krate.replace('-', "_") { krate.to_owned() } else { failed.to_owned() };
        let errors = err_lines
            .iter()
            .find_map(|l| l.split("due to ").nth(1)?.split_whitespace().next()?.parse().ok())
            .unwrap_or(1);
        let messages = if quiet {
            let first = err_lines.iter().position(|l| l.starts_with("error")).unwrap_or(0);
            let shown: Vec<&str> = err_lines[first..].iter().take(60).map(String::as_str).collect();
            format!("\n{}", shown.join("\n"))
        } else {
            String::new()
        };
        return Err(BuildError::Compile { krate, target: target.into(), errors, messages });
    }
    if !linker && let Some(cause) = network_failure(&err_lines) {
        return Err(BuildError::Network { cause, offline: None });
    }
    let mut hint = if linker {
        format!("; {linker_hint}")
    } else {
        let first = err_lines.iter().find(|l| l.starts_with("error:")).map(|l| l.trim_start_matches("error: "));
        match first {
            Some(first) => format!("; cargo failed before compiling: {first} (see its messages above)"),
            None => "; see cargo's messages above".to_owned(),
        }
    };
    if quiet {
        let tail = &err_lines[err_lines.len().saturating_sub(40)..];
        hint.push_str(&format!("\n--- output of the command (last {} lines) ---\n{}", tail.len(), tail.join("\n")));
    }
    Err(BuildError::Command { command: line, status: status.to_string(), hint })
}

/// What cargo prints when it cannot reach the network (curl's messages, and cargo's own around
/// them), in its stderr.
const NETWORK_ERRORS: &[&str] = &[
    "Could not resolve host",
    "Couldn't resolve host",
    "Couldn't connect to server",
    "Failed to connect",
    "Connection refused",
    "Network is unreachable",
    "Timeout was reached",
    "network failure seems to have happened",
    "spurious network error",
    "failed to download from",
];

/// The most specific line saying cargo could not reach the network, if one does: the last
/// `Caused by` of its error (curl's message) when there is one.
pub(crate) fn network_failure(stderr: &[String]) -> Option<String> {
    let is_network = |l: &String| NETWORK_ERRORS.iter().any(|e| l.contains(e));
    // Only cargo's error counts; its warnings about retries come before it.
    let error_at = stderr.iter().position(|l| l.starts_with("error:"))?;
    let errors = &stderr[error_at..];
    let line = errors.iter().rev().find(|l| is_network(l))?;
    Some(line.trim().trim_start_matches("error: ").to_owned())
}

/// Runs a query such as `rustc -vV` quietly and returns its stdout.
pub(crate) fn query(program: &str, args: &[&str]) -> Result<String, BuildError> {
    query_cmd(Command::new(program).args(args))
}

/// Runs a prepared query command quietly and returns its stdout.
pub(crate) fn query_cmd(cmd: &mut Command) -> Result<String, BuildError> {
    let line = shell_line(cmd);
    let out = cmd.output().map_err(|source| BuildError::Spawn {
        command: line.clone(),
        source,
        hint: "; is it installed and on PATH? (duet needs a rustup toolchain: https://rustup.rs)".into(),
    })?;
    if !out.status.success() {
        return Err(BuildError::Command {
            command: line,
            status: out.status.to_string(),
            hint: format!("; it said: {}", String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    String::from_utf8(out.stdout).map_err(|_| BuildError::Output(format!("`{line}` printed non-UTF-8 output")))
}

/// A command as a shell line, with its directory and the environment it sets.
pub fn shell_line(cmd: &Command) -> String {
    let mut line = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        line.push_str(&format!("cd {} && ", dir.display()));
    }
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        let value = value.map(|v| v.to_string_lossy()).unwrap_or_default();
        // PATH is long and only changed at its front; show the change, not the whole value.
        if key == "PATH" {
            let front = value.split(':').next().unwrap_or_default();
            line.push_str(&format!("PATH={front}:$PATH "));
        } else {
            line.push_str(&format!("{key}={value} "));
        }
    }
    line.push_str(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.contains([' ', '"', '\'']) {
            line.push_str(&format!(" '{arg}'"));
        } else {
            line.push(' ');
            line.push_str(&arg);
        }
    }
    line
}

/// The cargo to run: the one that started us (`$CARGO`) when there is one, else `cargo`.
pub(crate) fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_network_failure_is_told_apart_by_cargos_error() {
        // What `cargo rustc` says in a new crate under `unshare -n`.
        let offline = lines(
            "warning: spurious network error (2 tries remaining): [6] Could not resolve hostname (Could not resolve host: index.crates.io)
error: failed to get `foldhash` as a dependency of package `duet-maps v0.1.0 (/d/crates/maps)`

Caused by:
  download of config.json failed

Caused by:
  failed to download from `https://index.crates.io/config.json`

Caused by:
  [6] Could not resolve hostname (Could not resolve host: index.crates.io)",
        );
        assert_eq!(
            network_failure(&offline).as_deref(),
            Some("[6] Could not resolve hostname (Could not resolve host: index.crates.io)")
        );
        // Retry warnings alone, then a failure of another kind: not the network's.
        let other = lines(
            "warning: spurious network error (1 try remaining): [7] Couldn't connect to server
error: linking with `bpf-linker` failed: exit status: 1",
        );
        assert_eq!(network_failure(&other), None);
        assert_eq!(network_failure(&lines("error: failed to parse manifest at `/x/Cargo.toml`")), None);
    }
}
