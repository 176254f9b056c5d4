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
    run_inner(progress, cmd, hint, false).map(drop)
}

/// Like [`run`], but returns the command's stdout instead of passing it on.
pub(crate) fn run_capturing(progress: Progress, cmd: &mut Command, hint: &str) -> Result<String, BuildError> {
    run_inner(progress, cmd, hint, true)
}

fn run_inner(progress: Progress, cmd: &mut Command, hint: &str, capture: bool) -> Result<String, BuildError> {
    let line = shell_line(cmd);
    if !progress.quiet {
        eprintln!("$ {line}");
    }
    let hint = if hint.is_empty() { String::new() } else { format!("; {hint}") };
    cmd.stdout(if capture || progress.quiet { Stdio::piped() } else { std::io::stderr().into() });
    cmd.stderr(if progress.quiet { Stdio::piped() } else { Stdio::inherit() });
    let out = cmd.output().map_err(|source| BuildError::Spawn {
        command: line.clone(),
        source,
        hint: format!("{hint}; is it installed and on PATH?"),
    })?;
    if !out.status.success() {
        let mut hint = hint;
        if progress.quiet {
            let text = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            hint.push_str(&format!("\n--- output of the command (last {} lines) ---\n{}", tail.len(), tail.join("\n")));
        }
        return Err(BuildError::Command { command: line, status: out.status.to_string(), hint });
    }
    if capture {
        String::from_utf8(out.stdout).map_err(|_| BuildError::Output(format!("`{line}` printed non-UTF-8 output")))
    } else {
        Ok(String::new())
    }
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
