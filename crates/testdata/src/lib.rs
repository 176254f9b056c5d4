//! # duet-testdata — one test format for every engine
//!
//! **API boundary (internal to duet's test tooling).** Parses the `.data` files of the external
//! bpf_conformance suite and of duet's own `tests/data` corpus, and judges an engine's outcome
//! against them. Engines plug in through [`TestCase::check`], so the interpreter, the JIT, Wasm
//! and the kernel all run the very same files. No I/O: callers read the files.
#![forbid(unsafe_code)]

use duet_isa::{Program, RawInsn};

pub mod packets;
pub mod proxy_filters;
pub mod wasm_apps;

/// What a test expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The program returns this `r0`.
    Result(u64),
    /// Assembling, decoding, loading or running fails with a message containing this text
    /// (empty: any failure).
    Error(String),
}

/// One parsed `.data` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCase {
    /// The `-- asm` section, if any.
    pub asm: Option<String>,
    /// The `-- raw` section as bytes, if any.
    pub raw: Option<Vec<u8>>,
    /// The `-- mem` section (empty when absent).
    pub mem: Vec<u8>,
    /// The expectation.
    pub expect: Expect,
}

/// Why a `.data` file could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Neither `-- asm` nor `-- raw`.
    #[error("no `-- asm` or `-- raw` section")]
    NoProgram,
    /// Neither `-- result` nor `-- error`.
    #[error("no `-- result` or `-- error` section")]
    NoExpectation,
    /// A section's content is malformed.
    #[error("section `-- {section}`: {message}")]
    BadSection {
        /// The section name.
        section: String,
        /// What is wrong.
        message: String,
    },
}

/// The outcome of one test, as judged by [`TestCase::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// As expected.
    Pass,
    /// Not as expected: a description of the difference.
    Fail(String),
}

impl TestCase {
    /// Parses a `.data` file's text.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut sections: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("-- ") {
                sections.push((name.trim().to_owned(), String::new()));
            } else if let Some((_, body)) = sections.last_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        let get = |name: &str| sections.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_str());
        let bad = |section: &str, message: String| ParseError::BadSection { section: section.into(), message };
        let asm = get("asm").map(str::to_owned);
        let raw = get("raw").map(|body| parse_raw(body).map_err(|m| bad("raw", m))).transpose()?;
        if asm.is_none() && raw.is_none() {
            return Err(ParseError::NoProgram);
        }
        let mem = get("mem").map(|b| parse_hex_bytes(b).map_err(|m| bad("mem", m))).transpose()?.unwrap_or_default();
        let expect = match (get("result"), get("error")) {
            (Some(r), _) => Expect::Result(parse_result(r).map_err(|m| bad("result", m))?),
            (None, Some(e)) => Expect::Error(e.trim().to_owned()),
            (None, None) => return Err(ParseError::NoExpectation),
        };
        Ok(TestCase { asm, raw, mem, expect })
    }

    /// The program forms this test holds: `("asm", bytes)` and/or `("raw", bytes)`. Assembly
    /// errors are returned as the `Err` of that form.
    pub fn programs(&self) -> Vec<(&'static str, Result<Vec<u8>, String>)> {
        let mut out = Vec::new();
        if let Some(asm) = &self.asm {
            let bytes = duet_isa::assemble(asm).map_err(|e| format!("assembly: {e}")).map(|insns| {
                insns
                    .iter()
                    .flat_map(|i| {
                        let (a, b) = i.encode();
                        let mut v = a.to_bytes().to_vec();
                        if let Some(b) = b {
                            v.extend(b.to_bytes());
                        }
                        v
                    })
                    .collect()
            });
            out.push(("asm", bytes));
        }
        if let Some(raw) = &self.raw {
            out.push(("raw", Ok(raw.clone())));
        }
        out
    }

    /// Runs every program form through `engine` (bytecode and memory in, `r0` or an error
    /// message out) and judges the results. When both forms exist they must also encode to the
    /// same bytes.
    pub fn check(&self, mut engine: impl FnMut(&Program, &mut [u8]) -> Result<u64, String>) -> Verdict {
        let forms = self.programs();
        if let [(_, Ok(a)), (_, Ok(b))] = forms.as_slice()
            && a != b
        {
            return Verdict::Fail("`-- asm` and `-- raw` encode to different bytes".into());
        }
        for (form, bytes) in forms {
            let outcome = bytes.and_then(|bytes| {
                let program = Program::decode(&bytes).map_err(|e| format!("decode: {e}"))?;
                let mut mem = self.mem.clone();
                engine(&program, &mut mem)
            });
            let verdict = judge(&self.expect, &outcome);
            if let Verdict::Fail(why) = verdict {
                return Verdict::Fail(format!("{form}: {why}"));
            }
        }
        Verdict::Pass
    }
}

fn judge(expect: &Expect, outcome: &Result<u64, String>) -> Verdict {
    match (expect, outcome) {
        (Expect::Result(want), Ok(got)) if want == got => Verdict::Pass,
        (Expect::Result(want), Ok(got)) => Verdict::Fail(format!("expected {want:#x}, got {got:#x}")),
        (Expect::Result(want), Err(e)) => Verdict::Fail(format!("expected {want:#x}, got error: {e}")),
        (Expect::Error(want), Err(e)) if e.contains(want.as_str()) => Verdict::Pass,
        (Expect::Error(want), Err(e)) => {
            Verdict::Fail(format!("expected an error containing {want:?}, got error: {e}"))
        }
        (Expect::Error(want), Ok(got)) => Verdict::Fail(format!("expected an error containing {want:?}, got {got:#x}")),
    }
}

fn parse_result(body: &str) -> Result<u64, String> {
    let t = body.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>().or_else(|_| t.parse::<i64>().map(|v| v as u64)),
    };
    parsed.map_err(|_| format!("`{t}` is not a number"))
}

/// Parses whitespace-separated hex bytes (`00 a0 ff`).
pub fn parse_hex_bytes(body: &str) -> Result<Vec<u8>, String> {
    let digits: String = body.split_whitespace().collect();
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| format!("`{}` is not a hex byte", &digits[i..i + 2]))
        })
        .collect()
}

/// Parses a `-- raw` section: either one `0x`-prefixed 64-bit word per line (opcode in the low
/// byte) or eight hex bytes per line.
fn parse_raw(body: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(hex) = line.strip_prefix("0x") {
            let word = u64::from_str_radix(hex, 16).map_err(|_| format!("`{line}` is not a 64-bit hex word"))?;
            out.extend(RawInsn::from_u64(word).to_bytes());
        } else {
            out.extend(parse_hex_bytes(line)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_raw_forms_and_sections() {
        let case = TestCase::parse("# c\n-- asm\nlddw %r0, 0x1122334455667788\nexit\n-- raw\n0x5566778800000018\n0x1122334400000000\n0x0000000000000095\n-- result\n0x1122334455667788\n").unwrap();
        assert_eq!(case.expect, Expect::Result(0x1122334455667788));
        assert_eq!(case.raw.as_ref().unwrap().len(), 24);
        let forms = case.programs();
        assert_eq!(forms[0].1.as_ref().unwrap(), forms[1].1.as_ref().unwrap());
        let bytes = TestCase::parse("-- raw\n07 00 01 00 01 00 00 00\n95 00 00 00 00 00 00 00\n-- error\n").unwrap();
        assert_eq!(bytes.raw.unwrap()[2], 1);
        assert_eq!(bytes.expect, Expect::Error(String::new()));
        assert_eq!(TestCase::parse("-- result\n1\n"), Err(ParseError::NoProgram));
    }

    #[test]
    fn judges_outcomes() {
        assert_eq!(judge(&Expect::Result(1), &Ok(1)), Verdict::Pass);
        assert!(matches!(judge(&Expect::Result(1), &Ok(2)), Verdict::Fail(_)));
        assert_eq!(judge(&Expect::Error("depth".into()), &Err("call depth".into())), Verdict::Pass);
        assert!(matches!(judge(&Expect::Error("depth".into()), &Ok(0)), Verdict::Fail(_)));
    }
}
