//! Code generation: the plan's schedule becomes the core module of the flow
//! component, written with `wasm-encoder` and wrapped with `wit-component`
//! into a component of the world `sandflow:flow/flow`.
//!
//! The module has no memory and no data: its one export, `schedule.run`, is
//! straight-line code that calls `engine.run-node` for every step in order,
//! tests `engine.has-output` where a router may have stopped a branch, and
//! loops on `engine.loop-next`. The plan itself (parameters, templates,
//! edges) travels in a custom section of the component.

use crate::ir::{Plan, Step};
use std::sync::OnceLock;
use wasm_encoder::{
    CodeSection, CustomSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection,
    Instruction, Module, TypeSection, ValType,
};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

/// Name of the component's custom section that carries the plan (JSON).
pub const PLAN_SECTION: &str = "sandflow-plan";

/// The WIT package every compiled flow implements.
pub const FLOW_WIT: &str = include_str!("../../wit/flow/flow.wit");

const ENGINE: &str = "sandflow:flow/engine@0.1.0";
const RUN_EXPORT: &str = "sandflow:flow/schedule@0.1.0#run";

// Function indices: the three imports come first.
const RUN_NODE: u32 = 0;
const HAS_OUTPUT: u32 = 1;
const LOOP_NEXT: u32 = 2;

// `engine.outcome` and `schedule.status` discriminants.
const OUTCOME_FAILED: i32 = 2;
const STATUS_COMPLETED: i32 = 0;
const STATUS_ABORTED: i32 = 1;

/// A failure of code generation: a bug in the compiler, never in the flow.
#[derive(Debug, thiserror::Error)]
#[error("code generation failed: {0}")]
pub struct CodegenError(String);

/// The encoded `component-type` metadata of the flow world, computed once.
fn world_metadata() -> Result<&'static [u8], CodegenError> {
    static METADATA: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    METADATA
        .get_or_init(|| {
            let mut resolve = Resolve::default();
            let package = resolve.push_str("flow.wit", FLOW_WIT).map_err(|e| format!("{e:#}"))?;
            let world = resolve.select_world(&[package], Some("flow")).map_err(|e| format!("{e:#}"))?;
            wit_component::metadata::encode(&resolve, world, StringEncoding::UTF8, None).map_err(|e| format!("{e:#}"))
        })
        .as_deref()
        .map_err(|e| CodegenError(e.clone()))
}

/// Generates the core module for `plan`.
pub fn core_module(plan: &Plan) -> Result<Vec<u8>, CodegenError> {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]); // 0: run-node, loop-next
    types.ty().function([ValType::I32, ValType::I32], [ValType::I32]); // 1: has-output
    types.ty().function([], [ValType::I32]); // 2: run

    let mut imports = ImportSection::new();
    imports.import(ENGINE, "run-node", EntityType::Function(0));
    imports.import(ENGINE, "has-output", EntityType::Function(1));
    imports.import(ENGINE, "loop-next", EntityType::Function(0));

    let mut functions = FunctionSection::new();
    functions.function(2);

    let mut exports = ExportSection::new();
    exports.export(RUN_EXPORT, ExportKind::Func, 3);

    let mut body = Function::new([]);
    emit_steps(&mut body, &plan.schedule);
    body.instruction(&Instruction::I32Const(STATUS_COMPLETED));
    body.instruction(&Instruction::End);
    let mut code = CodeSection::new();
    code.function(&body);

    let metadata = world_metadata()?;
    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&functions)
        .section(&exports)
        .section(&code)
        .section(&CustomSection { name: "component-type:sandflow-flow".into(), data: metadata.into() });
    Ok(module.finish())
}

fn emit_steps(f: &mut Function, steps: &[Step]) {
    for step in steps {
        match step {
            Step::Run { node, guards } => {
                for (k, guard) in guards.iter().enumerate() {
                    f.instruction(&Instruction::I32Const(guard.node as i32));
                    f.instruction(&Instruction::I32Const(guard.output as i32));
                    f.instruction(&Instruction::Call(HAS_OUTPUT));
                    if k > 0 {
                        f.instruction(&Instruction::I32And);
                    }
                }
                if !guards.is_empty() {
                    f.instruction(&Instruction::If(wasm_encoder::BlockType::Empty));
                }
                f.instruction(&Instruction::I32Const(*node as i32));
                f.instruction(&Instruction::Call(RUN_NODE));
                f.instruction(&Instruction::I32Const(OUTCOME_FAILED));
                f.instruction(&Instruction::I32Eq);
                f.instruction(&Instruction::If(wasm_encoder::BlockType::Empty));
                f.instruction(&Instruction::I32Const(STATUS_ABORTED));
                f.instruction(&Instruction::Return);
                f.instruction(&Instruction::End);
                if !guards.is_empty() {
                    f.instruction(&Instruction::End);
                }
            }
            Step::Loop { node, body } => {
                f.instruction(&Instruction::Block(wasm_encoder::BlockType::Empty));
                f.instruction(&Instruction::Loop(wasm_encoder::BlockType::Empty));
                f.instruction(&Instruction::I32Const(*node as i32));
                f.instruction(&Instruction::Call(LOOP_NEXT));
                f.instruction(&Instruction::I32Eqz);
                f.instruction(&Instruction::BrIf(1));
                emit_steps(f, body);
                f.instruction(&Instruction::Br(0));
                f.instruction(&Instruction::End);
                f.instruction(&Instruction::End);
            }
        }
    }
}

/// Generates the flow component for `plan`, with the plan in a custom
/// section, and validates it.
pub fn component(plan: &Plan, plan_json: &[u8]) -> Result<Vec<u8>, CodegenError> {
    let module = core_module(plan)?;
    let mut component = ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| CodegenError(format!("{e:#}")))?;
    // Custom sections are valid anywhere in a component; append the plan
    // (section id 0, then the size-prefixed name and data).
    component.push(0);
    wasm_encoder::Encode::encode(&CustomSection { name: PLAN_SECTION.into(), data: plan_json.into() }, &mut component);
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&component)
        .map_err(|e| CodegenError(format!("generated component does not validate: {e}")))?;
    Ok(component)
}

/// Reads the plan section out of a flow component.
pub fn plan_section(component: &[u8]) -> Option<&[u8]> {
    let mut found = None;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload {
            Ok(wasmparser::Payload::CustomSection(section)) if section.name() == PLAN_SECTION => {
                found = Some(section.data())
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    found
}
