#!/usr/bin/env python3
"""Parses Prometheus text exposition with the reference parser (PyPI's
prometheus-client), so the tests check sockaff's output with a real parser.

  prom.py file PATH     parse a textfile
  prom.py url URL       GET URL, parse the body

Prints one JSON line: {"status": HTTP status (url only), "families": {name: type},
"samples": [[name, {labels}, value], ...]}. A parse error exits non-zero.
"""
import json
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main(mode, target):
    status = None
    if mode == "file":
        with open(target, encoding="utf-8") as source:
            text = source.read()
    else:
        try:
            with urllib.request.urlopen(target, timeout=20) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            print(json.dumps({"status": error.code, "families": {}, "samples": []}))
            return
    families, samples = {}, []
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        samples += [[s.name, s.labels, s.value] for s in family.samples]
    print(json.dumps({"status": status, "families": families, "samples": samples}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
