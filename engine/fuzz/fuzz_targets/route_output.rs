//! Any exit code and output of macOS `route add|delete` (it exits 0 even when the kernel
//! refused, so the verdict reads its text): judging never panics; "done" needs exit code 0;
//! "exists" and "not in table" need route's words for them; "bad address" needs a non-zero
//! exit; and the `RouteBackend` result follows the verdict (adding over an existing route is
//! AlreadyExists, deleting what is gone succeeds). Input: one byte picks the exit code, then
//! stdout and stderr separated by a NUL.
#![no_main]

use std::io::ErrorKind;

use dockroute_engine::platform::fuzz_api::{judge, result, Request, Verdict};
use dockroute_stdx::process::Output;
use libfuzzer_sys::fuzz_target;

const COMMAND: &str = "/sbin/route -n add -inet 198.19.1.0/24 -interface utun5";

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let code = match pick % 8 {
        0..=3 => Some(0),
        4 => Some(1),
        5 => Some(68),
        6 => None,
        _ => Some(i32::from(pick)),
    };
    let (stdout, stderr) = text.split_once('\0').unwrap_or((text, ""));
    let verdict = judge(code, stdout, stderr);
    let said = |words: &str| stdout.contains(words) || stderr.contains(words);
    match &verdict {
        Verdict::Done => assert_eq!(code, Some(0)),
        Verdict::Exists => assert!(said("File exists")),
        Verdict::NotInTable => assert!(said("not in table")),
        Verdict::BadAddress(_) => assert!(code != Some(0) && stderr.contains("route: bad address: ")),
        Verdict::Failed(why) => assert!(!why.is_empty()),
    }
    let out = Output { code, stdout: stdout.to_string(), stderr: stderr.to_string() };
    let add = result(Request::Add, COMMAND, &out);
    let delete = result(Request::Delete, COMMAND, &out);
    assert_eq!(add.is_ok(), verdict == Verdict::Done, "{verdict:?}");
    let gone = matches!(verdict, Verdict::Done | Verdict::NotInTable | Verdict::BadAddress(_));
    assert_eq!(delete.is_ok(), gone, "{verdict:?}");
    if verdict == Verdict::Exists {
        assert_eq!(add.as_ref().map_err(|e| e.kind()), Err(ErrorKind::AlreadyExists));
    }
    if let Err(e) = add {
        assert!(e.to_string().contains(COMMAND), "{e}");
    }
});
