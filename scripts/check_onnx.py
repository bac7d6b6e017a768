#!/usr/bin/env python3
"""Validates an exported ONNX file with the reference `onnx` package.

Usage: check_onnx.py MODEL.onnx

Runs onnx.checker.check_model(full_check=True) and
onnx.shape_inference.infer_shapes(strict_mode=True), then checks that every value in the
graph (inputs, outputs and every intermediate) got a fully static shape. Prints one JSON
object on stdout: {"ok": bool, "errors": [...], "onnx": version, "values": count} or
{"skipped": reason} when the onnx package cannot be imported (exit code 0 in both cases;
the caller decides). Debian: `apt install python3-onnx` (the project tests use
/usr/bin/python3).
"""
import json
import sys


def main() -> int:
    try:
        import onnx
        from onnx import checker, shape_inference
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        print(json.dumps({"skipped": f"the onnx Python package cannot be imported ({e})"}))
        return 0

    path = sys.argv[1]
    model = onnx.load(path)
    errors = []
    try:
        checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001
        errors.append(f"onnx.checker: {str(e).strip()}")

    values = 0
    try:
        inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        graph = inferred.graph
        infos = {v.name: v for v in list(graph.value_info) + list(graph.input) + list(graph.output)}
        inits = {t.name for t in graph.initializer}
        names = [o for n in graph.node for o in n.output if o] + [i.name for i in graph.input if i.name not in inits]
        for name in names:
            values += 1
            v = infos.get(name)
            if v is None or not v.type.HasField("tensor_type") or not v.type.tensor_type.HasField("shape"):
                errors.append(f"value {name}: no shape could be inferred")
                continue
            dims = v.type.tensor_type.shape.dim
            if any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
                shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
                errors.append(f"value {name}: shape {shown} is not static")
    except Exception as e:  # noqa: BLE001
        errors.append(f"onnx.shape_inference: {str(e).strip()}")

    print(json.dumps({"ok": not errors, "errors": errors[:20], "onnx": onnx.__version__, "values": values}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
