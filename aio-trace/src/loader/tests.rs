//! Checks the shared names (`aio_trace_common::names`) and the probe table
//! against the symbols of the eBPF object build.rs embedded, without loading
//! it (no root needed): a map, program or global renamed on one side only
//! fails here instead of at load time.
//!
//! Layer: loader unit tests. Imports the loader and the `object` ELF reader.

use std::collections::BTreeSet;

use aio_trace_common::{GLOBALS, MAPS};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SymbolKind};

use super::{Attach, EBPF_OBJECT, PROBES};

/// Section of the legacy map definitions aya-ebpf's `#[map]` emits.
const MAPS_SECTION: &str = "maps";
/// Section of every `#[tracepoint]` program (attached by group and name).
const TRACEPOINT_SECTION: &str = "tracepoint";
/// Prefix of a `#[raw_tracepoint]` program's section.
const RAW_SECTION_PREFIX: &str = "raw_tp/";

/// Every global symbol of the object: (name, its section's name, kind).
fn symbols() -> Vec<(String, String, SymbolKind)> {
    let file = object::File::parse(EBPF_OBJECT).expect("the embedded eBPF object is an ELF file");
    file.symbols()
        .filter(|s| s.is_global())
        .filter_map(|s| {
            let section = file.section_by_index(s.section_index()?).ok()?;
            Some((
                s.name().ok()?.to_owned(),
                section.name().ok()?.to_owned(),
                s.kind(),
            ))
        })
        .collect()
}

fn has(symbols: &[(String, String, SymbolKind)], name: &str, section: &str) -> bool {
    symbols.iter().any(|(n, s, _)| n == name && s == section)
}

#[test]
fn every_map_name_is_a_map_of_the_object() {
    let symbols = symbols();
    for map in MAPS {
        assert!(
            has(&symbols, map, MAPS_SECTION),
            "no map {map} in the eBPF object"
        );
    }
}

#[test]
fn every_global_name_is_a_global_of_the_object() {
    let symbols = symbols();
    for global in GLOBALS {
        assert!(
            [".rodata", ".data", ".bss"]
                .iter()
                .any(|section| has(&symbols, global, section)),
            "no global {global} in the eBPF object"
        );
    }
}

#[test]
fn every_probe_is_a_program_of_the_object_with_its_attach_type() {
    let symbols = symbols();
    for probe in PROBES {
        let section = match probe.attach {
            Attach::TracePoint => TRACEPOINT_SECTION.to_owned(),
            Attach::Raw => format!("{RAW_SECTION_PREFIX}{}", probe.program),
        };
        assert!(
            has(&symbols, probe.program, &section),
            "no program {} in section {section} of the eBPF object",
            probe.program
        );
    }
}

#[test]
fn every_program_of_the_object_is_a_probe() {
    let programs: BTreeSet<String> = symbols()
        .into_iter()
        .filter(|(_, section, kind)| {
            *kind == SymbolKind::Text
                && (section == TRACEPOINT_SECTION || section.starts_with(RAW_SECTION_PREFIX))
        })
        .map(|(name, _, _)| name)
        .collect();
    let probes: BTreeSet<String> = PROBES.iter().map(|p| p.program.to_owned()).collect();
    assert_eq!(programs, probes);
}
