;; A node whose `run` grows a table without end: each `table.grow` asks for
;; 10,000 more elements; when the host refuses (-1) it traps.
;; `describe` answers an empty list. Just enough canonical ABI to be a node.
(module
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (global $bump (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    ;; align up: (bump + align - 1) & -align
    (local.set $ptr (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
    (global.set $bump (local.get $ptr))
    (global.set $bump (i32.add (global.get $bump) (local.get 3)))
    (local.get $ptr))
  ;; list<descriptor> at 16: pointer 0, length 0.
  (func (export "sandflow:node/handler@0.1.0#describe") (result i32)
    (i32.store (i32.const 16) (i32.const 0))
    (i32.store (i32.const 20) (i32.const 0))
    (i32.const 16))
  ;; The invocation record flattens to 12 i32s (six strings and lists).
  (func (export "sandflow:node/handler@0.1.0#run")
    (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    (loop $grow
      (if (i32.eq (table.grow $t (ref.null func) (i32.const 10000)) (i32.const -1))
        (then unreachable))
      (br $grow))
    (i32.const 0))
)
