//! The Wasmtime engine, its linker, and the host bindings of the WIT world.
//!
//! One [`wasmtime::Engine`] per runtime, configured once: component model,
//! fuel metering (budgets and cancellation both ride on it), and the pooling
//! allocator with warm slots kept resident, because a fresh Store per call
//! is the hot path and the pool is what makes it cheap. Fuel rather than
//! epochs: epoch interruption measured slower on CPU-bound guests here, and
//! fuel also gives the per-Run budget.
//!
//! A Run that executes guest code is admitted first: it takes its memory
//! limit out of one budget for all running guests together
//! ([`EngineOptions::memory_total`]), then an instance slot, and waits while
//! either is short. Taking the limit rather than what the guest ends up
//! using is what lets the budget hold: a guest may grow to its limit at any
//! moment, and a guest that waited for memory mid-call could wait forever
//! on another doing the same.
//!
//! `bindgen!` runs here and nowhere else.

use crate::execute::host::HostState;
use crate::{Error, Result};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
pub(crate) use bindings::GuestPre;
pub(crate) use bindings::exports::rh::wasm::function::{CallError, FunctionInfo};

/// Settings of the engine that a runtime is opened with.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Calls that may execute at once (slots in the instance pool).
    pub max_concurrent: u32,
    /// The guest yields to the host every this many units of fuel; this
    /// bounds how long a cancel or timeout takes to land.
    pub fuel_yield_interval: u64,
    /// Meter fuel. Without it there are no fuel budgets, and a guest that
    /// never calls the host cannot be cancelled or timed out: only for
    /// measuring what metering costs.
    pub metering: bool,
    /// The memory all running guests may ask for together, in bytes: the
    /// sum of their memory limits. `None`: half of this machine's memory
    /// (see [`default_memory_total`]).
    pub memory_total: Option<u64>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_concurrent: 128,
            fuel_yield_interval: 1_000_000,
            metering: true,
            memory_total: None,
        }
    }
}

pub(crate) struct RhEngine {
    pub engine: Engine,
    /// One permit per instance slot of the pool: a Run beyond them waits
    /// for a slot instead of failing to instantiate.
    pub slots: Arc<Semaphore>,
    /// The memory budget, one permit per MiB: a Run holds its memory
    /// limit's worth while it executes.
    memory: Arc<Semaphore>,
    /// The budget's size in MiB.
    memory_total_mib: u64,
    pub linker: Linker<HostState>,
    pub compat: String,
    pub options: EngineOptions,
    /// Compiles that may run at once: each takes every core for seconds
    /// (Cranelift compiles functions in parallel), so more at once only
    /// queue for the same cores and hold more memory.
    pub compiles: std::sync::Arc<tokio::sync::Semaphore>,
}

/// What a guest executes under: its share of the memory budget and its
/// instance slot, given back when dropped.
pub(crate) struct Admission {
    _memory: OwnedSemaphorePermit,
    _slot: OwnedSemaphorePermit,
}

impl RhEngine {
    /// Wait until `memory` bytes of the budget and an instance slot are
    /// free, and hold them. The memory first: a Run waiting for it holds no
    /// slot that a smaller Run could use. Waiters are served in order, so a
    /// large Run is not passed over forever by small ones.
    pub async fn admit(&self, memory: u64) -> Result<Admission> {
        self.check_memory(memory)?;
        // At most the budget (checked above), so within a u32 of MiB.
        let mib = memory.div_ceil(1 << 20).min(u32::MAX as u64) as u32;
        let memory = self.memory.clone().acquire_many_owned(mib).await;
        let slot = self.slots.clone().acquire_owned().await;
        match (memory, slot) {
            (Ok(m), Ok(s)) => Ok(Admission {
                _memory: m,
                _slot: s,
            }),
            _ => Err(Error::Engine("the instance pool is closed".into())),
        }
    }

    /// Refuse a memory limit the budget could never hold: its Run would
    /// wait forever.
    pub fn check_memory(&self, memory: u64) -> Result<()> {
        let total = self.memory_total_mib << 20;
        if memory > total {
            return Err(Error::Invalid(format!(
                "memory limit of {memory} bytes is over the {total} bytes all running guests \
                 may hold together (the memory total; `rh-wasm serve --memory-total`)"
            )));
        }
        Ok(())
    }

    /// The memory limit of a guest that runs outside any Run (describing a
    /// component at deploy, a bare call): the default limit, within the
    /// budget.
    pub fn inspection_memory(&self) -> u64 {
        crate::Limits::default().memory.min(self.memory_total())
    }

    /// Admission for a guest run outside any Run.
    pub async fn admit_inspection(&self) -> Result<Admission> {
        self.admit(self.inspection_memory()).await
    }

    /// The memory budget of all running guests, in bytes.
    pub fn memory_total(&self) -> u64 {
        self.memory_total_mib << 20
    }

    pub fn new(options: EngineOptions) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(options.metering);
        let n = options.max_concurrent.max(1);
        let mut pool = PoolingAllocationConfig::default();
        // A component built by rustc for wasip2 has a handful of core
        // instances (the program, the adapter shims); leave room for more.
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .total_stacks(n)
            .max_memory_size(crate::Limits::MAX_MEMORY as usize)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            // Reset only the pages a call dirtied (Linux 6.7+), rather than
            // memset the whole kept-resident MiB: halves the bare call here.
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        crate::background::lower_compile_threads();
        let engine = Engine::new(&config).map_err(Error::engine)?;
        let memory_total_mib = (options.memory_total.unwrap_or_else(default_memory_total) >> 20)
            .min(Semaphore::MAX_PERMITS as u64);

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(Error::engine)?;
        bindings::rh::wasm::artifacts::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(Error::engine)?;

        let compat = compatibility_key(&engine);
        Ok(RhEngine {
            engine,
            slots: Arc::new(Semaphore::new(n as usize)),
            memory: Arc::new(Semaphore::new(memory_total_mib as usize)),
            memory_total_mib,
            linker,
            compat,
            options,
            compiles: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        })
    }

    /// Compile a component on a background thread, one compile at a time:
    /// compiling an 18 MB component takes seconds of CPU, which must not
    /// stall the async workers that answer every other request.
    pub async fn compile(&self, bytes: std::sync::Arc<[u8]>) -> Result<(Component, Vec<u8>)> {
        let _permit = self
            .compiles
            .clone()
            .acquire_owned()
            .await
            .expect("the compile permits are never closed");
        let engine = self.engine.clone();
        crate::background::run(move || {
            let component = Component::new(&engine, &bytes).map_err(|e| Error::BadComponent {
                message: format!("{e:#}"),
            })?;
            let cwasm = component.serialize().map_err(Error::engine)?;
            Ok((component, cwasm))
        })
        .await
    }
}

/// The key that names this engine's precompiled code on disk: the first 16
/// hex digits of the sha256 of what `precompile_compatibility_hash` feeds a
/// [`Hasher`]. Stable across builds and toolchains, unlike the standard
/// library's `DefaultHasher`, whose algorithm may change: a store's copies
/// stay usable by the next build of the same Wasmtime and settings.
fn compatibility_key(engine: &Engine) -> String {
    let mut h = Sha256Hasher::default();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.hex_prefix()
}

/// A [`Hasher`] whose state is a sha256 of every byte written to it.
#[derive(Default)]
struct Sha256Hasher(sha2::Sha256);

impl Sha256Hasher {
    /// The first 16 hex digits of the sha256 of what was written.
    fn hex_prefix(self) -> String {
        use sha2::Digest;
        let mut hex = hex::encode(self.0.finalize());
        hex.truncate(16);
        hex
    }
}

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.0, bytes);
    }

    /// The first 8 bytes of the digest so far, big-endian: the same 16 hex
    /// digits as [`Sha256Hasher::hex_prefix`].
    fn finish(&self) -> u64 {
        use sha2::Digest;
        let digest = self.0.clone().finalize();
        u64::from_be_bytes(digest[..8].try_into().expect("a sha256 has 32 bytes"))
    }
}

/// The memory budget of running guests when none is given: half of this
/// machine's memory, or of the container's limit (cgroup v2
/// `memory.max`) when that is lower. Half, because each Run is counted at
/// its limit however little it uses, and the host itself needs room beside
/// its guests: request bodies, results, output, compiled code, the page
/// cache of the Run folders.
pub fn default_memory_total() -> u64 {
    let info = rustix::system::sysinfo();
    let ram = (info.totalram as u64).saturating_mul(info.mem_unit.max(1) as u64);
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    cgroup.map_or(ram, |c| c.min(ram)) / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Keeps every byte a `Hash` impl feeds it, in order.
    #[derive(Default)]
    struct Recorder(Vec<u8>);

    impl Hasher for Recorder {
        fn write(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }

    fn small_engine() -> RhEngine {
        RhEngine::new(EngineOptions {
            max_concurrent: 2,
            ..EngineOptions::default()
        })
        .unwrap()
    }

    #[test]
    fn the_compatibility_key_is_a_sha256_of_what_the_engine_hashes() {
        let eng = small_engine();
        let mut fed = Recorder::default();
        eng.engine.precompile_compatibility_hash().hash(&mut fed);
        assert!(!fed.0.is_empty());
        let expected = hex::encode(Sha256::digest(&fed.0));
        assert_eq!(eng.compat, expected[..16]);
        // Another engine of the same settings finds the same copies.
        assert_eq!(small_engine().compat, eng.compat);
    }

    #[test]
    fn the_hasher_gives_the_sha256_of_its_bytes() {
        // sha256("abc"), FIPS 180-2 appendix B.1.
        const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let mut h = Sha256Hasher::default();
        h.write(b"a");
        h.write(b"bc");
        assert_eq!(format!("{:016x}", h.finish()), ABC[..16]);
        assert_eq!(h.hex_prefix(), ABC[..16]);
        // Integers go in as their bytes, as the default `Hasher` methods do.
        let mut h = Sha256Hasher::default();
        h.write_u32(0x0102_0304);
        h.write(b"key");
        let mut bytes = 0x0102_0304u32.to_ne_bytes().to_vec();
        bytes.extend_from_slice(b"key");
        assert_eq!(h.hex_prefix(), hex::encode(Sha256::digest(&bytes))[..16]);
    }
}
