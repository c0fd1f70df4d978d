//! `sandflow:flow/engine`, linked by hand: its functions receive the store
//! itself, so `run-node` can instantiate and call node components in the same
//! store as the flow (one fuel budget, one memory budget, one deadline).

use super::{NodeEvent, invocation, loops};
use crate::bindings::flow::sandflow::flow::engine::Outcome;
use crate::bindings::node::Node;
use crate::error::RunError;
use crate::library::Binding;
use crate::sandbox::RunState;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::StoreContextMut;
use wasmtime::component::Linker;

const ENGINE: &str = "sandflow:flow/engine@0.1.0";

/// Adds the engine functions to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    let mut engine = linker.instance(ENGINE)?;
    engine.func_wrap("run-node", |store: StoreContextMut<'_, RunState>, (node,): (u32,)| {
        run_node(store, node as usize).map(|outcome| (outcome,))
    })?;
    engine.func_wrap("has-output", |store: StoreContextMut<'_, RunState>, (node, output): (u32, u32)| {
        let run = store.data().flow.as_ref().ok_or_else(not_running)?;
        let held = run.values.get(node as usize).and_then(|o| o.get(output as usize)).is_some_and(Option::is_some);
        Ok((held,))
    })?;
    engine.func_wrap("loop-next", |mut store: StoreContextMut<'_, RunState>, (node,): (u32,)| {
        let run = store.data_mut().flow.as_mut().ok_or_else(not_running)?;
        let flow = run.flow.clone();
        check_index(&flow.plan, node as usize)?;
        match loops::next(&flow, run, node as usize) {
            Ok(more) => Ok((more,)),
            Err(limit) => Err(store.data_mut().refuse(limit)),
        }
    })?;
    Ok(())
}

fn not_running() -> wasmtime::Error {
    wasmtime::format_err!("the flow engine was called outside a flow run")
}

fn check_index(plan: &sandflow_flow_compiler::Plan, node: usize) -> wasmtime::Result<()> {
    if node >= plan.nodes.len() {
        wasmtime::bail!("the flow asked for node {node}, but its plan has {} nodes", plan.nodes.len());
    }
    Ok(())
}

fn run_node(mut store: StoreContextMut<'_, RunState>, index: usize) -> wasmtime::Result<Outcome> {
    let run = store.data_mut().flow.as_mut().ok_or_else(not_running)?;
    let flow = run.flow.clone();
    check_index(&flow.plan, index)?;
    let started = Instant::now();
    let binding = &flow.bindings[index];
    // A node one of whose inputs was never produced sits on a stopped branch.
    let starved = flow.incoming[index].iter().any(|&e| {
        let edge = &flow.plan.edges[e];
        run.values[edge.from as usize][edge.output as usize].is_none()
    });
    if starved && !matches!(binding, Binding::Loop) {
        return Ok(Outcome::Skipped);
    }
    let (type_name, instance) = match binding {
        // Agents run it; its description is on its tool output from the start.
        Binding::Tool(_) => return Ok(Outcome::Done),
        Binding::Loop => {
            return Ok(match loops::start(&flow, run, index) {
                Ok(()) => Outcome::Done,
                Err(failure) => {
                    run.failure = Some(failure);
                    Outcome::Failed
                }
            });
        }
        Binding::Std(type_name) => (type_name.as_str(), std_instance(&mut store)?),
        Binding::Custom(component, type_name) => {
            (type_name.as_str(), custom_instance(&mut store, component, &flow.plan.nodes[index].node)?)
        }
    };
    let run = store.data().flow.as_ref().ok_or_else(not_running)?;
    let invocation = invocation::build(&flow, run, index, type_name);
    store.data_mut().caps.node_id.clone_from(&flow.plan.nodes[index].id);
    let result = instance.sandflow_node_handler().call_run(&mut store, &invocation)?;
    let events = store.data().caps.events.clone();
    let run = store.data_mut().flow.as_mut().ok_or_else(not_running)?;
    let node = &flow.plan.nodes[index];
    let outcome = match result {
        Ok(outputs) => {
            for output in outputs {
                if let Some(k) = node.outputs.iter().position(|p| p.name == output.name) {
                    run.values[index][k] = Some(output.value);
                }
            }
            // A streaming client hears the user's message as soon as it is made.
            if node.role == sandflow_flow_compiler::catalog::Role::ChatInput
                && let (Some(events), Some(Some(value))) = (&events, run.values[index].first())
            {
                let input = crate::FlowOutput {
                    node_id: node.id.clone(),
                    display_name: node.display_name.clone(),
                    source: None,
                    value: value.clone(),
                };
                let _ = events.send(crate::RunEvent::Input(Box::new(input)));
            }
            Outcome::Done
        }
        Err(error) => {
            let message = match error {
                crate::NodeError::InvalidInput(m) | crate::NodeError::Failed(m) => m,
            };
            run.failure =
                Some(RunError::Node { node_id: node.id.clone(), display_name: node.display_name.clone(), message });
            Outcome::Failed
        }
    };
    run.events.push(NodeEvent {
        node_id: node.id.clone(),
        completed: outcome == Outcome::Done,
        elapsed: started.elapsed(),
    });
    Ok(outcome)
}

/// The run's instance of the standard library, created on first use.
fn std_instance(store: &mut StoreContextMut<'_, RunState>) -> wasmtime::Result<Arc<Node>> {
    if let Some(instance) = store.data().flow.as_ref().and_then(|r| r.std_instance.clone()) {
        return Ok(instance);
    }
    let pre = store.data().std_library.pre.clone();
    let instance = Arc::new(pre.instantiate(&mut *store)?);
    if let Some(run) = store.data_mut().flow.as_mut() {
        run.std_instance = Some(instance.clone());
    }
    Ok(instance)
}

/// The run's instance of a custom node component, created on first use.
fn custom_instance(
    store: &mut StoreContextMut<'_, RunState>,
    component: &crate::NodeComponent,
    name: &str,
) -> wasmtime::Result<Arc<Node>> {
    if let Some(instance) = store.data().flow.as_ref().and_then(|r| r.custom_instances.get(name).cloned()) {
        return Ok(instance);
    }
    let instance = Arc::new(component.pre.instantiate(&mut *store)?);
    if let Some(run) = store.data_mut().flow.as_mut() {
        run.custom_instances.insert(name.to_owned(), instance.clone());
    }
    Ok(instance)
}
