//! Langflow's Loop component, run by the host: the Loop node takes its
//! items when it runs, `loop-next` hands out one item per pass on the `item`
//! output and collects what the feedback edges bring back, and when the
//! items are exhausted the `done` output holds the collected rows.

use super::{FlowRun, LoadedFlow};
use crate::error::RunError;
use crate::{Data, Table, Value};

/// Most items one Loop may iterate over in a run.
pub const MAX_ITEMS: usize = 10_000;
/// Most bytes one Loop may collect from its passes: host memory a guest
/// could otherwise fill by handing back a large output pass after pass.
pub const MAX_COLLECTED_BYTES: usize = 64 << 20;

/// Iteration state of one Loop node.
pub struct LoopState {
    items: Vec<String>,
    next: usize,
    collected: Vec<String>,
    /// Bytes of `collected`, a row's own bookkeeping included.
    collected_bytes: usize,
}

/// Runs the Loop node itself: takes the items of its `data` field.
pub fn start(flow: &LoadedFlow, run: &mut FlowRun, index: usize) -> Result<(), RunError> {
    let mut items = Vec::new();
    let fed = flow.incoming[index].iter().map(|&e| &flow.plan.edges[e]).filter(|e| e.field == "data");
    for edge in fed {
        if let Some(Some(value)) = run.values[edge.from as usize].get(edge.output as usize) {
            rows_of(value, &mut items);
        }
    }
    if items.len() > MAX_ITEMS {
        let node = &flow.plan.nodes[index];
        return Err(RunError::Node {
            node_id: node.id.clone(),
            display_name: node.display_name.clone(),
            message: format!("the loop has {} items; at most {MAX_ITEMS} are allowed per run", items.len()),
        });
    }
    run.values[index].iter_mut().for_each(|v| *v = None);
    run.loops.insert(index, LoopState { items, next: 0, collected: Vec::new(), collected_bytes: 0 });
    Ok(())
}

/// `loop-next`: collects the previous pass, then hands out the next item.
/// `Err`: the passes brought back more than [`MAX_COLLECTED_BYTES`].
pub fn next(flow: &LoadedFlow, run: &mut FlowRun, index: usize) -> Result<bool, String> {
    let outputs = &flow.plan.nodes[index].outputs;
    let item = outputs.iter().position(|o| o.name == "item");
    let done = outputs.iter().position(|o| o.name == "done");
    let Some(mut state) = run.loops.remove(&index) else { return Ok(false) };
    if state.next > 0 {
        let before = state.collected.len();
        for edge in flow.plan.edges.iter().filter(|e| e.feedback && e.to as usize == index) {
            if let Some(Some(value)) = run.values[edge.from as usize].get(edge.output as usize) {
                rows_of(value, &mut state.collected);
            }
        }
        let row = std::mem::size_of::<String>();
        state.collected_bytes += state.collected[before..].iter().map(|r| r.len() + row).sum::<usize>();
        if state.collected_bytes > MAX_COLLECTED_BYTES {
            return Err(format!(
                "loop `{}` collected over {} MiB from its passes",
                flow.plan.nodes[index].display_name,
                MAX_COLLECTED_BYTES >> 20
            ));
        }
    }
    let more = state.next < state.items.len();
    if let Some(item) = item {
        run.values[index][item] = more.then(|| data_row(&state.items[state.next]));
    }
    if more {
        state.next += 1;
    } else if let Some(done) = done {
        run.values[index][done] = Some(Value::Table(Table { rows: std::mem::take(&mut state.collected) }));
    }
    run.loops.insert(index, state);
    Ok(more)
}

/// A value as Data rows (JSON objects), the way Langflow's Loop reads its input.
fn rows_of(value: &Value, rows: &mut Vec<String>) {
    match value {
        Value::Table(t) => rows.extend(t.rows.iter().cloned()),
        Value::Data(d) => rows.push(d.data.clone()),
        Value::Message(m) => rows.push(serde_json::json!({ "text": m.text }).to_string()),
        Value::Text(t) => rows.push(serde_json::json!({ "text": t }).to_string()),
        Value::Json(j) => match serde_json::from_str::<serde_json::Value>(j) {
            Ok(serde_json::Value::Array(items)) => rows.extend(items.iter().map(|i| i.to_string())),
            Ok(other) => rows.push(other.to_string()),
            Err(_) => rows.push(serde_json::json!({ "text": j }).to_string()),
        },
        _ => {}
    }
}

fn data_row(row: &str) -> Value {
    Value::Data(Data { text_key: "text".into(), data: row.to_owned(), default_value: String::new() })
}
