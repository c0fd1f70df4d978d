//! Building a node's invocation: parameters, then overrides, then edges.

use super::{FlowRun, LoadedFlow};
use crate::{Field, Invocation};

/// The invocation of node `index` with the values available now. Fields fed
/// by an edge come after parameters, in edge order; a list field gets one
/// entry per edge.
pub fn build(flow: &LoadedFlow, run: &FlowRun, index: usize, component: &str) -> Invocation {
    let node = &flow.plan.nodes[index];
    let overrides = &run.overrides[index];
    let mut fields: Vec<Field> = flow.params[index]
        .iter()
        .filter(|p| !overrides.iter().any(|o| o.name == p.name))
        .cloned()
        .chain(overrides.iter().cloned())
        .collect();
    for &e in &flow.incoming[index] {
        let edge = &flow.plan.edges[e];
        if let Some(Some(value)) = run.values[edge.from as usize].get(edge.output as usize) {
            fields.push(Field { name: edge.field.clone(), value: value.clone() });
        }
    }
    Invocation {
        component: component.to_owned(),
        node_id: node.id.clone(),
        display_name: node.display_name.clone(),
        session_id: run.session_id.clone(),
        fields,
        wanted: flow.wanted[index].clone(),
    }
}
