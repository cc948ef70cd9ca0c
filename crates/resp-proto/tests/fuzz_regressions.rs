//! Replays the inputs kept in `tests/fuzz_regressions/` (fuzzing finds and hand-made tricky
//! cases) through both decoders and the frame splitter: they must agree, and none may panic
//! or hang, fed whole, in pieces, and with the buffer cleared, cut or replaced (by the next
//! input) between calls.

mod common;

use common::{decode_with_changes, differential, Rng, KINDS};
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
        max_reply_elements: 12,
        resp3: true,
    };
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(f).expect("readable input"))
        .collect();
    for (i, input) in inputs.iter().enumerate() {
        let next = &inputs[(i + 1) % inputs.len()];
        for limits in [Limits::default(), tight] {
            differential(input, limits, &mut rng);
            for kind in KINDS {
                for _ in 0..20 {
                    decode_with_changes(kind, limits, input, next, &mut rng);
                    decode_with_changes(kind, limits, input, input, &mut rng);
                }
            }
        }
    }
}
