//! Writes the codec benchmark corpora to a directory (default `target/corpora`), one
//! `<name>.resp` file each plus `<name>.replies` with its reply count, for the hiredis
//! harness to read the very same bytes.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/corpora".into()),
    );
    std::fs::create_dir_all(&dir)?;
    for c in redis_benches::corpora() {
        std::fs::write(dir.join(format!("{}.resp", c.name)), &c.bytes)?;
        std::fs::write(
            dir.join(format!("{}.replies", c.name)),
            c.replies.to_string(),
        )?;
    }
    println!("corpora written to {}", dir.display());
    Ok(())
}
