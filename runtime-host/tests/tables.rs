//! A guest that grows a table without end is stopped by the table cap, a
//! limit memory caps cannot see. The guest is WAT (`tests/guests/table_grower.wat`)
//! made into a node component with wit-component.

use sandflow_runtime_host::{Invocation, Limits, RunError, Runtime, RuntimeConfig};
use std::path::Path;
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

fn table_grower() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut module = wat::parse_file(root.join("tests/guests/table_grower.wat")).expect("WAT parses");
    let mut resolve = Resolve::default();
    resolve.push_dir(root.join("../wit/host")).expect("host WIT");
    let (node, _) = resolve.push_dir(root.join("../wit/node")).expect("node WIT");
    let world = resolve.select_world(&[node], Some("node")).expect("node world");
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).expect("embeds");
    ComponentEncoder::default().module(&module).expect("module").validate(true).encode().expect("component")
}

#[test]
fn table_growth_hits_the_table_cap() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let runtime = Runtime::new(&RuntimeConfig { max_instances: 8, cache_dir: Some(cache), ..RuntimeConfig::default() })
        .expect("runtime");
    let node = runtime.load_node(&table_grower()).expect("loads");
    let invocation = Invocation {
        component: "Tables".into(),
        node_id: "t".into(),
        display_name: "t".into(),
        session_id: "s".into(),
        fields: vec![],
        wanted: vec![],
    };
    // The tenant's cap, and beyond it the engine's own maximum per table.
    for cap in [15_000, usize::MAX] {
        let limits = Limits { table_elements: cap, ..Limits::default() };
        let err = runtime.sandbox(limits).run_node(&node, &invocation).expect_err("grows forever");
        assert!(matches!(&err, RunError::Limit(m) if m.contains("table")), "{err}");
    }
    // The host goes on: describing in a new sandbox works.
    assert!(runtime.sandbox(Limits::default()).describe(&node).expect("describes").is_empty());
}
