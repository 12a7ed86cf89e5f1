//! A command for the tests of command Runs: `exit N`, `spin`, `say TEXT`,
//! `read PATH` (prints the file or fails), `write PATH TEXT`, `env`,
//! `fill PATH MIB` (writes MIB MiB of noise to a file, 1 MiB at a time), and
//! `race MS`, which swaps folders and symlinks pointing out of its scratch
//! folder for MS milliseconds, to attack the host's readers of Run folders.
//!
//! WASI 0.2's `exit` carries success or failure only, so any non-zero code
//! reaches the host as 1.

use std::hint::black_box;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(0).as_str() {
        "exit" => {
            println!("exiting with {}", arg(1));
            ExitCode::from(arg(1).parse::<u8>().unwrap_or(1))
        }
        "spin" => {
            println!("spinning");
            let _ = std::io::stdout().flush();
            let mut x: u64 = black_box(1);
            loop {
                x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        "say" => {
            println!("{}", args[1..].join(" "));
            ExitCode::SUCCESS
        }
        "read" => match std::fs::read_to_string(arg(1)) {
            Ok(t) => {
                print!("{t}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot read {}: {e}", arg(1));
                ExitCode::from(3)
            }
        },
        "write" => match std::fs::write(arg(1), arg(2)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cannot write {}: {e}", arg(1));
                ExitCode::from(4)
            }
        },
        "race" => race(arg(1).parse().unwrap_or(1000)),
        "fill" => {
            let mib: u64 = arg(2).parse().unwrap_or(0);
            match fill(&arg(1), mib) {
                Ok(()) => {
                    println!("wrote {mib} MiB to {}", arg(1));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cannot fill {}: {e}", arg(1));
                    ExitCode::from(5)
                }
            }
        }
        "env" => {
            println!("{} vars", std::env::vars().count());
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("unknown verb `{other}`");
            ExitCode::from(2)
        }
    }
}

/// What `race` makes: each name is swapped between a real folder holding
/// decoys at the same paths and a symlink out of the sandbox's view, to the
/// host's `/` (`d`), its `/proc/self` (`p`) and the folder holding every
/// Run (`r`).
const RACERS: [(&str, &str); 3] = [
    ("d", "../../../../../../../../../../../../../../../.."),
    (
        "p",
        "../../../../../../../../../../../../../../../../proc/self",
    ),
    ("r", "../.."),
];

fn race(ms: u64) -> ExitCode {
    use wasip2::filesystem::preopens::get_directories;
    let Some((root, _)) = get_directories().into_iter().next() else {
        eprintln!("no preopened folder");
        return ExitCode::from(5);
    };
    let decoys = [
        "etc/passwd",
        "environ",
        "cmdline",
        "proc/self/environ",
        "victim/result.json",
        "secret.txt",
    ];
    for (name, target) in RACERS {
        for f in decoys {
            let path = format!("/{name}/{f}");
            let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(&path, "decoy\n");
        }
        if let Err(e) = root.symlink_at(target, &format!("{name}.link")) {
            eprintln!("symlink {name}: {e:?}");
        }
        // Absolute targets too, where the host allows making them.
        let _ = root.symlink_at("/proc/self", &format!("{name}.abs"));
    }
    println!("racing");
    let _ = std::io::stdout().flush();
    let start = std::time::Instant::now();
    let mut swaps = 0u64;
    while start.elapsed().as_millis() < u128::from(ms) {
        for (name, _) in RACERS {
            let _ = std::fs::rename(format!("/{name}"), "/hold");
            let _ = std::fs::rename(format!("/{name}.link"), format!("/{name}"));
            let _ = std::fs::rename("/hold", format!("/{name}.link"));
        }
        swaps += 1;
    }
    println!("swapped {swaps} times");
    ExitCode::SUCCESS
}

/// Write `mib` MiB to `path`, each MiB its own write, as fast as it can.
/// The bytes are noise, each MiB numbered, so that no filesystem can
/// compress or share them away.
fn fill(path: &str, mib: u64) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    let mut chunk = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in chunk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    for i in 0..mib {
        chunk[..8].copy_from_slice(&i.to_le_bytes());
        f.write_all(&chunk)?;
    }
    f.flush()
}
