//! The Wasmtime engine, its linker, and the host bindings of the WIT world.
//!
//! One [`wasmtime::Engine`] per runtime, configured once: component model,
//! fuel metering (budgets and cancellation both ride on it), and the pooling
//! allocator with warm slots kept resident, because a fresh Store per call
//! is the hot path and the pool is what makes it cheap. Fuel rather than
//! epochs: epoch interruption measured slower on CPU-bound guests here, and
//! fuel also gives the per-Run budget.
//!
//! `bindgen!` runs here and nowhere else.

use crate::host::HostState;
use crate::{Error, Result};
use std::hash::{Hash, Hasher};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Host bindings of world `rh:wasm/guest`.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "guest",
        exports: { default: async },
    });
}

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
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_concurrent: 128,
            fuel_yield_interval: 1_000_000,
            metering: true,
        }
    }
}

pub(crate) struct RhEngine {
    pub engine: Engine,
    /// One permit per instance slot of the pool: a Run beyond them waits
    /// for a slot instead of failing to instantiate.
    pub slots: std::sync::Arc<tokio::sync::Semaphore>,
    pub linker: Linker<HostState>,
    pub compat: String,
    pub options: EngineOptions,
    /// Compiles that may run at once: each takes every core for seconds
    /// (Cranelift compiles functions in parallel), so more at once only
    /// queue for the same cores and hold more memory.
    pub compiles: std::sync::Arc<tokio::sync::Semaphore>,
}

impl RhEngine {
    /// Wait for a free instance slot.
    pub async fn slot(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slots are never closed")
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

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(Error::engine)?;
        bindings::rh::wasm::artifacts::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(Error::engine)?;

        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let compat = format!("{:016x}", h.finish());
        Ok(RhEngine {
            engine,
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(n as usize)),
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
