//! Replays the inputs kept in `tests/fuzz_regressions/` (fuzzing finds and hand-made tricky
//! cases) through both decoders: they must agree, and neither may panic or hang.

mod common;

use common::{differential, Rng};
use resp_proto::Limits;
use std::fs;
use std::path::Path;

#[test]
fn replay_fuzz_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("the regressions folder exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| !matches!(p.extension(), Some(x) if x == "md"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{} inputs in {}",
        files.len(),
        dir.display()
    );
    let mut rng = Rng::new(4);
    let tight = Limits {
        max_bulk_len: 64,
        max_aggregate_len: 8,
        max_depth: 5,
        max_line_len: 32,
        max_reply_bytes: 200,
    };
    for file in files {
        let input = fs::read(&file).expect("readable input");
        for limits in [Limits::default(), tight] {
            differential(&input, limits, &mut rng);
        }
    }
}
