//! [`StoreBuilder`]: the one place a guest's Store is made, for function
//! calls, commands, deploy-time inspection and the bare call alike.
//!
//! Every Store starts closed: WASI with no files, environment, arguments or
//! network; stdin empty; stdout and stderr discarded unless the Run's sinks
//! are given. Its memory, tables and handles are limited (see
//! `host::HostState::into_store`), and with metering on it gets its fuel and
//! yields to the async executor every `fuel_yield_interval` units, so a
//! guest in a tight loop can still be cancelled or timed out.

use super::engine::RhEngine;
use super::host::{ArtifactCtx, HostState, Sink};
use crate::{Error, Result};
use std::path::Path;
use wasmtime::Store;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// Builds one guest's Store; see the module docs.
pub(crate) struct StoreBuilder<'a> {
    eng: &'a RhEngine,
    wasi: WasiCtxBuilder,
    memory: u64,
    fuel: u64,
}

impl<'a> StoreBuilder<'a> {
    /// A closed Store whose guest may grow its memory to `memory` bytes.
    pub fn new(eng: &'a RhEngine, memory: u64) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        StoreBuilder {
            eng,
            wasi,
            memory,
            fuel: u64::MAX,
        }
    }

    /// Send the guest's stdout and stderr to the Run's sinks.
    pub fn outputs(mut self, stdout: Sink, stderr: Sink) -> Self {
        self.wasi.stdout(stdout).stderr(stderr);
        self
    }

    /// Give a command its `argv`.
    pub fn args(mut self, argv: &[String]) -> Self {
        self.wasi.args(argv);
        self
    }

    /// Let the guest read and write `dir` as `/`.
    pub fn preopen(mut self, dir: &Path) -> Result<Self> {
        self.wasi
            .preopened_dir(dir, "/", FsPerms::ReadWrite)
            .map_err(Error::engine)?;
        Ok(self)
    }

    /// The fuel the guest may burn (with metering on).
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.fuel = fuel;
        self
    }

    /// The Store, its guest's artifact calls going to `artifacts`.
    pub fn build(mut self, artifacts: ArtifactCtx) -> Store<HostState> {
        let mut store =
            HostState::new(self.wasi.build(), self.memory, artifacts).into_store(&self.eng.engine);
        if self.eng.options.metering {
            // The engine consumes fuel and is async whenever it meters
            // (`RhEngine::new`), the two things these calls need.
            store
                .set_fuel(self.fuel)
                .expect("a metering engine consumes fuel");
            store
                .fuel_async_yield_interval(Some(self.eng.options.fuel_yield_interval))
                .expect("a metering engine is async and consumes fuel");
        }
        store
    }
}

/// The fuel a Store has burnt of the `given` it started with (0 with
/// metering off).
pub(crate) fn fuel_used(eng: &RhEngine, store: &Store<HostState>, given: u64) -> u64 {
    match eng.options.metering {
        true => given.saturating_sub(store.get_fuel().unwrap_or(given)),
        false => 0,
    }
}
