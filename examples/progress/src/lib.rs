//! A slow function that reports its progress: the one to watch with
//! `logs --follow` and to stop with `cancel`.
//!
//! Build and run it (from the repository root):
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
//! rh-wasm deploy examples/target/wasm32-wasip2/release/progress.wasm
//! rh-wasm run progress 20 500 --run-name slow   # 20 steps, 500 ms apart
//! rh-wasm logs local slow --follow              # the lines appear as printed
//! rh-wasm cancel local slow                     # the Run becomes `cancelled`
//! ```

use std::io::Write;
use std::thread;
use std::time::Duration;

/// Counts `steps` steps, sleeping `millis` milliseconds before each and
/// printing `step i/N` after it; returns the number of steps done.
#[rh_guest::function]
fn progress(steps: u32, millis: u64) -> u32 {
    let mut stdout = std::io::stdout();
    for step in 1..=steps {
        thread::sleep(Duration::from_millis(millis));
        // Flushed line by line so that a follower sees each step when it
        // happens, not when a buffer fills.
        let _ = writeln!(stdout, "step {step}/{steps}");
        let _ = stdout.flush();
    }
    steps
}
