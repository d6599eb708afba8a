#!/usr/bin/env python3
"""Seed fuzz/corpus/<target>/ from the real recorded bodies (../shared/fixtures/real,
bodies over 32 KiB cut to 4 entries per list) and the test fixtures. Run from anywhere;
then fuzz (`cargo +nightly fuzz run <target>`) and minimise (`cargo +nightly fuzz cmin <target>`)."""
import json, os, re, glob, shutil
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
R = os.path.join(ROOT, "..", "shared", "fixtures", "real")
T = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "fuzz", "corpus")
BIG = 32 * 1024

def trim(v, n=4):
    if isinstance(v, list):
        return [trim(x, n) for x in v[:n]]
    if isinstance(v, dict):
        return {k: trim(x, n) for k, x in v.items()}
    return v

def body(path):
    data = open(path, "rb").read()
    if len(data) > BIG:
        data = json.dumps(trim(json.loads(data)), indent=1).encode()
    return data

def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data)

def consts(path):
    return dict(re.findall(r'const (\w+): &str = r#"(.*?)"#;', open(path).read(), re.S))

m = {"statuspage": ["atlassian-statuspage"], "statusio": ["statusio"], "slack": ["slack"],
     "google_cloud": ["gcp"], "heroku": ["heroku"], "salesforce": ["salesforce"], "cachet": ["cachet"]}
for target, dirs in m.items():
    for d in dirs:
        for f in sorted(glob.glob(f"{R}/{d}/*.json")):
            put(target, os.path.basename(f), body(f))
put("statuspage", "board-hostile-incident.json", body(f"{T}/board/statuspage-hostile-incident.json"))
# every real body also seeds the json rule engine
for f in sorted(glob.glob(f"{R}/*/*.json")):
    put("json", os.path.basename(f), body(f))
jc = consts(ROOT + "/tests/probers_json.rs")
for k, v in jc.items():
    put("json", f"test-{k.lower()}.json", v.encode())
if "QUEUES" in jc:
    put("json", "paths-queues", b"$.queues[*]\t$.messages\n$..nodes.*\t$.mem_used\n$[?@.consumers > 0]\n\0" + jc["QUEUES"].encode())
put("json", "paths-statuspage", b"$.components[?@.status != 'operational']\t$.status\n$..incidents[*].impact\n\0" + body(f"{R}/atlassian-statuspage/instructure-summary.json"))
ic = consts(ROOT + "/tests/probers_instatus.rs")
for s in [k for k in ic if k.startswith("SUMMARY")]:
    for c in [k for k in ic if k.startswith("COMPONENTS")]:
        put("instatus", f"{s.lower()}+{c.lower()}", ic[s].encode() + b"\0" + ic[c].encode())
yoti = body(f"{R}/cachet/yoti-v1-components-all-operational.json")
put("cachet", "yoti+empty-groups+empty-incidents", yoti + b"\0" + b'{"data":[]}' + b"\0" + b'{"data":[],"meta":{"pagination":{"current_page":1,"total_pages":1}}}')
for f in sorted(glob.glob(f"{T}/config/good/*.yaml") + glob.glob(f"{T}/config/bad/*.yaml")):
    put("config", f.split("/config/")[1].replace("/", "-"), open(f, "rb").read())
put("config", "exporter.yaml", open(ROOT + "/exporter.yaml", "rb").read())
for f in sorted(glob.glob(f"{T}/webconfig/*/*.yml")):
    put("webconfig", f.split("/webconfig/")[1].replace("/", "-"), open(f, "rb").read())
for t in sorted(os.listdir(OUT)):
    fs = glob.glob(f"{OUT}/{t}/*")
    print(t, len(fs), sum(os.path.getsize(f) for f in fs))
