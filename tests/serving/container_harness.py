"""Run in a fresh interpreter (`python -I -S`) the way SageMaker's PyTorch container drives code/inference.py.

argv: <model dir> <site-packages> <allowed top-level modules, comma separated> <cases JSON file>
Only the model's code/ folder, the standard library and the allowed modules (torch and numpy and what they
import) can be imported: anything else raises ImportError, so the package must not need this repository.
Prints one JSON line per case: {"name", "status", "content_type", "body" | "message"}.
"""

import contextlib
import importlib.abc
import json
import sys

model_dir, site_packages, allowed_csv, cases_file = sys.argv[1:5]
allowed = set(allowed_csv.split(",")) | set(sys.stdlib_module_names) | {"inference", "serving"}


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in allowed:
            raise ModuleNotFoundError(f"{name} is not available in the serving container", name=name)
        return None


sys.meta_path.insert(0, Blocker())
sys.path[:0] = [f"{model_dir}/code"]
sys.path.append(site_packages)

import inference  # noqa: E402  (code/inference.py, as the toolkit imports the SAGEMAKER_PROGRAM module)

UTF8_TYPES = ("application/json", "text/csv")  # sagemaker_inference.content_types.UTF8_TYPES
model = inference.model_fn(model_dir)
with open(cases_file) as handle:
    cases = json.load(handle)
for case in cases:
    body = case["body"].encode("latin-1")
    if case["content_type"] in UTF8_TYPES:
        with contextlib.suppress(UnicodeDecodeError):
            body = body.decode("utf-8")  # the toolkit decodes UTF-8 content types before input_fn
    try:
        data = inference.input_fn(body, case["content_type"])
        prediction = inference.predict_fn(data, model)
        content, content_type = inference.output_fn(prediction, case.get("accept") or "application/json")
        result = {"status": 200, "content_type": content_type, "body": content.decode()}
    except Exception as err:  # noqa: BLE001  (as the toolkit's transform(): its status if it has one, else 500)
        status = getattr(err, "status_code", 500)
        result = {"status": status, "message": getattr(err, "message", repr(err)), "type": type(err).__name__}
    print(json.dumps({"name": case["name"], **result}), flush=True)
print(json.dumps({"name": "<modules>", "loaded": sorted({m.split(".")[0] for m in sys.modules})}), flush=True)
