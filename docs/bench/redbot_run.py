#!/usr/bin/env python3
"""REDbot (redbot 2.x, httplint) against one URL with a chosen method, headers and body.

`redbot URL` only GETs; this is the same CLI (redbot/cli.py) with set_request's other
arguments exposed, so POSTs, 404s, 405s and authorised API calls can be linted too.

    redbot_run.py [-X METHOD] [-H 'Name: value']... [-d BODY] [-v] [-L] URL
"""

import sys
from argparse import ArgumentParser
from configparser import ConfigParser

import thor

from redbot.formatter import find_formatter
from redbot.resource import HttpResource


def main() -> None:
    p = ArgumentParser()
    p.add_argument("url")
    p.add_argument("-X", dest="method", default="GET")
    p.add_argument("-H", dest="headers", action="append", default=[])
    p.add_argument("-d", dest="body", default="")
    p.add_argument("-v", dest="verbose", action="store_true")
    p.add_argument("-L", dest="levels", action="store_true", help="list each note's level")
    a = p.parse_args()
    cp = ConfigParser()
    cp.read_dict({"redbot": {"enable_local_access": "True"}})
    config = cp["redbot"]
    headers = [tuple(s.strip() for s in h.split(":", 1)) for h in a.headers]
    res = HttpResource(config)
    res.set_request(a.url, method=a.method, headers=headers, content=a.body.encode())
    fmt = find_formatter("text_verbose" if a.verbose else "text", "text", False)(
        config, res, sys.stdout.write, {"tty_out": False, "descend": False}
    )
    fmt.bind_resource(res)

    @thor.events.on(fmt)
    def formatter_done() -> None:
        if a.levels:
            for note in res.response.notes:
                sys.stdout.write(f"[{note.level.value}] {note.category.value}: {note.summary}\n")
        thor.stop()

    res.check()
    thor.run()


if __name__ == "__main__":
    main()
