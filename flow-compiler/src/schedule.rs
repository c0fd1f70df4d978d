//! Scheduling: orders the plan's nodes the way Langflow runs them and finds
//! loops and the branches a router may stop.
//!
//! Langflow layers vertices topologically, forces Chat Input into the first
//! layer, runs a layer's ready vertices (we run them in document order, which
//! is deterministic), allows cycles only through a Loop component's `item`
//! output, and skips everything downstream of a stopped branch.

use crate::catalog::Role;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::ir::{Guard, Plan, Step};
use crate::langflow::Flow;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

/// Fills `plan.schedule`, reporting cycles that do not go through a Loop.
pub fn schedule(plan: &mut Plan, flow: &Flow, diags: &mut Diagnostics) {
    let Some(order) = topological_order(plan, flow, diags) else { return };
    let absent = maybe_absent(plan, &order);
    let mut placed = vec![false; plan.nodes.len()];
    let mut nesting = Nesting { flow, diags, depth: 0 };
    plan.schedule = steps(plan, &order, &absent, &mut placed, &mut nesting);
}

/// Most Loops one inside another. Each level nests the plan deeper, and
/// the plan is read back with JSON's nesting limit of 128 (and walked
/// recursively), so a hostile chain of loops must stop here.
pub const MAX_LOOP_NESTING: usize = 16;

/// How deep in loops [`steps`] is, and where it reports going too deep.
struct Nesting<'a> {
    flow: &'a Flow,
    diags: &'a mut Diagnostics,
    depth: usize,
}

/// Kahn's algorithm over non-feedback edges; ties go to inputs first, then
/// to document order.
fn topological_order(plan: &Plan, flow: &Flow, diags: &mut Diagnostics) -> Option<Vec<usize>> {
    let n = plan.nodes.len();
    let mut indegree = vec![0usize; n];
    let mut successors = vec![Vec::new(); n];
    for e in plan.edges.iter().filter(|e| !e.feedback) {
        indegree[e.to as usize] += 1;
        successors[e.from as usize].push(e.to as usize);
    }
    let priority = |i: usize| {
        let first = matches!(plan.nodes[i].role, Role::ChatInput | Role::Webhook);
        Reverse((!first, i))
    };
    let mut ready: BinaryHeap<_> = (0..n).filter(|&i| indegree[i] == 0).map(priority).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse((_, i))) = ready.pop() {
        order.push(i);
        for &s in &successors[i] {
            indegree[s] -= 1;
            if indegree[s] == 0 {
                ready.push(priority(s));
            }
        }
    }
    if order.len() == n {
        return Some(order);
    }
    let stuck: Vec<&str> = (0..n).filter(|&i| indegree[i] > 0).map(|i| plan.nodes[i].id.as_str()).collect();
    let first = (0..n).find(|&i| indegree[i] > 0).unwrap_or(0);
    let node = &flow.nodes[first];
    diags.push(
        Diagnostic::error(
            "cycle",
            &node.pointer,
            format!("these components form a cycle without a Loop component: {}", stuck.join(", ")),
        )
        .node(&node.id, &node.display_name)
        .help("break the cycle, or route it through a Loop component (feed the body's result back into its `item` output)"),
    );
    None
}

/// Nodes whose outputs may be missing at run time: routers, and everything
/// that depends on one of their outputs.
fn maybe_absent(plan: &Plan, order: &[usize]) -> Vec<bool> {
    let mut absent: Vec<bool> = plan.nodes.iter().map(|n| n.role == Role::Router).collect();
    for &i in order {
        if plan.edges.iter().any(|e| e.to as usize == i && !e.feedback && absent[e.from as usize]) {
            absent[i] = true;
        }
    }
    absent
}

fn steps(plan: &Plan, order: &[usize], absent: &[bool], placed: &mut [bool], nesting: &mut Nesting<'_>) -> Vec<Step> {
    let mut out = Vec::new();
    for &i in order {
        if placed[i] {
            continue;
        }
        placed[i] = true;
        let node = &plan.nodes[i];
        if node.tool {
            continue; // run by the agent that holds it as a tool
        }
        let guards = plan
            .edges
            .iter()
            .filter(|e| e.to as usize == i && !e.feedback && absent[e.from as usize])
            .map(|e| Guard { node: e.from, output: e.output })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        out.push(Step::Run { node: i as u32, guards });
        if node.role == Role::Loop {
            if nesting.depth == MAX_LOOP_NESTING {
                let node = &nesting.flow.nodes[i];
                nesting.diags.push(
                    Diagnostic::error(
                        "loop-nesting",
                        &node.pointer,
                        format!("Loop `{}` is nested more than {MAX_LOOP_NESTING} Loops deep", node.id),
                    )
                    .node(&node.id, &node.display_name)
                    .help("run the inner loops as a flow of their own, or flatten them"),
                );
                return out;
            }
            let body = loop_body(plan, i);
            let body_order: Vec<usize> = order.iter().copied().filter(|&j| body[j] && !placed[j]).collect();
            nesting.depth += 1;
            let body_steps = steps(plan, &body_order, absent, placed, nesting);
            nesting.depth -= 1;
            out.push(Step::Loop { node: i as u32, body: body_steps });
        }
    }
    out
}

/// The body of loop `l`: nodes reachable from its `item` output that lead
/// back to it through a feedback edge.
fn loop_body(plan: &Plan, l: usize) -> Vec<bool> {
    let n = plan.nodes.len();
    let item = plan.nodes[l].outputs.iter().position(|o| o.name == "item");
    let mut forward = vec![false; n];
    let mut stack: Vec<usize> = plan
        .edges
        .iter()
        .filter(|e| e.from as usize == l && Some(e.output as usize) == item && !e.feedback)
        .map(|e| e.to as usize)
        .collect();
    while let Some(i) = stack.pop() {
        if i == l || std::mem::replace(&mut forward[i], true) {
            continue;
        }
        stack.extend(plan.edges.iter().filter(|e| e.from as usize == i && !e.feedback).map(|e| e.to as usize));
    }
    let mut backward = vec![false; n];
    let mut stack: Vec<usize> =
        plan.edges.iter().filter(|e| e.to as usize == l && e.feedback).map(|e| e.from as usize).collect();
    while let Some(i) = stack.pop() {
        if i == l || std::mem::replace(&mut backward[i], true) {
            continue;
        }
        stack.extend(plan.edges.iter().filter(|e| e.to as usize == i && !e.feedback).map(|e| e.from as usize));
    }
    (0..n).map(|i| forward[i] && backward[i]).collect()
}
