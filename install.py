#!/usr/bin/env python3
"""One-command setup for facesketch: the backend's virtual environment, the GIMP 3 and Krita 5
plug-ins (with pyzmq/msgpack wheels for each host's own Python), and the shared settings file.

    python3 install.py                 set up everything (backend venv, plug-ins in every host found, settings)
    python3 install.py --serve         ... then run the backend in the foreground (Ctrl+C stops it)
    python3 install.py --test          ... with the test requirements, then run the whole test suite
    python3 install.py --check         report what is installed where; exit 1 when something is missing
    python3 install.py --dry-run       print every action, change nothing
    python3 install.py --uninstall     remove the plug-ins (add --purge to remove settings and venvs too)

Standard library only; runs with any python3 >= 3.10. This file is the command line; the work is done
by the package facesketch/installer/ (one module per step, see its __init__), imported from this
checkout. It never pip-installs into a host's Python: hosts get unpacked wheels in
`<plug-in folder>/_vendor/<tag>/`. See docs/install.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Optional

if sys.version_info < (3, 10):
    sys.exit("install.py needs Python 3.10 or newer (this is %d.%d)." % sys.version_info[:2])

# `python3 install.py` puts this file's folder first on the module path, so this is the checkout's package.
from facesketch.installer import REPO, InstallError, client_module  # noqa: E402
from facesketch.installer import hosts, plugins, settings, testing, venv, wheels  # noqa: E402
from facesketch.installer.ops import Ops  # noqa: E402

vendored = client_module("vendored")
PREP_VENV = os.path.join(REPO, ".venv-prep")


def _parse(argv: list) -> tuple:
    rest = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="install.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Arguments after `--` go to pytest (--test) or to `facesketch serve` (--serve).")
    p.add_argument("--hosts", default="auto",
                   help="which host plug-ins to install: auto (every host found; default), gimp, krita, "
                        "gimp,krita, or none")
    p.add_argument("--dry-run", action="store_true", help="print every action, change nothing")
    p.add_argument("--uninstall", action="store_true", help="remove the plug-ins (settings are kept)")
    p.add_argument("--purge", action="store_true",
                   help="with --uninstall: also remove the settings file, the venvs and the wheel cache")
    p.add_argument("--check", action="store_true",
                   help="report what is installed where; exit 1 if something is missing")
    p.add_argument("--home", help="treat DIR as the user's home (tests, chroots)", metavar="DIR")
    p.add_argument("--gimp-dir", action="append", default=[], metavar="DIR",
                   help="install the GIMP plug-in into this plug-ins folder (repeatable; replaces detection)")
    p.add_argument("--krita-dir", action="append", default=[], metavar="DIR",
                   help="install the Krita plug-in into this pykrita folder (repeatable; replaces detection)")
    p.add_argument("--kritarc", help="the kritarc to enable the plug-in in (with --krita-dir)")
    p.add_argument("--host-python", metavar="X.Y[,X.Y]",
                   help="the hosts' Python version(s), instead of detecting them")
    p.add_argument("--venv", default=os.path.join(REPO, ".venv"), help="backend venv (default: <repo>/.venv)")
    p.add_argument("--venv-python", help="the python3 to create the venv with (default: this one)")
    p.add_argument("--no-venv", action="store_true", help="skip the backend venv (plug-ins and settings only)")
    p.add_argument("--test", action="store_true",
                   help="also install test requirements (and, as root, tests/apt-packages.txt), then run pytest")
    p.add_argument("--no-apt", action="store_true", help="with --test: do not apt-get install anything")
    p.add_argument("--serve", action="store_true", help="after setup, run the backend in the foreground")
    p.add_argument("--ray", action="store_true",
                   help="also install Ray into the backend venv (requirements-ray.txt), for `facesketch serve --ray` "
                        "across a studio's GPU machines; one machine never needs it (--test includes it)")
    p.add_argument("--prep", action="store_true",
                   help="also create .venv-prep for data preparation (models/data/requirements-prep.txt)")
    p.add_argument("--plugin-src", metavar="DIR",
                   help="take the plug-ins from DIR instead of <repo>/plugin (same layout; for tests and packaging)")
    p.add_argument("--quiet", action="store_true", help="print only problems")
    return p.parse_args(argv), rest


def _host_list(spec: str) -> Optional[list]:
    """None for auto, else the hosts named."""
    s = [x.strip().lower() for x in spec.split(",") if x.strip()]
    if s in (["auto"], []):
        return None
    if s == ["none"]:
        return []
    bad = [x for x in s if x not in ("gimp", "krita")]
    if bad:
        raise InstallError(f"--hosts: unknown host {', '.join(bad)} (use gimp, krita, auto or none)")
    return s


def resolve_targets(a, host_python: Optional[list]) -> list:
    if a.gimp_dir or a.krita_dir:
        return [hosts.explicit_target("gimp", d, host_python=host_python) for d in a.gimp_dir] + \
               [hosts.explicit_target("krita", d, a.kritarc, host_python=host_python) for d in a.krita_dir]
    wanted = _host_list(a.hosts)
    if wanted is None and a.test:
        wanted = []  # testing does not touch the user's hosts; host tests install into their own HOME
    found = hosts.detect_hosts(a.home, host_python=host_python)
    if wanted is None:
        return found
    out = [t for t in found if t.host in wanted]
    for h in wanted:
        if not any(t.host == h for t in out):
            out.append(hosts.default_target(h, a.home, host_python=host_python))
    return out


def cmd_check(a, targets: list, host_python: Optional[list], settings_path: str) -> int:
    ok = True
    print(f"facesketch at {REPO}")
    if a.no_venv:
        print("backend venv: not checked (--no-venv)")
    else:
        problems, desc = venv.check_venv(a.venv)
        print(f"backend venv: {desc}: " + ("ok" if not problems else "PROBLEM: " + ", ".join(problems)))
        ok &= not problems
    s_exists = os.path.exists(settings_path)
    s = settings.fs_settings.load(settings_path)
    line = f"settings: {settings_path}"
    if not s_exists:
        line += ": MISSING"
        ok = False
    elif s.load_warning:
        line += ": PROBLEM: " + s.load_warning
        ok = False
    else:
        line += f" (address {s.address}, backend_command {' '.join(s.backend_command) or '(none)'})"
        if s.backend_command and not os.path.exists(s.backend_command[0]) and not shutil.which(s.backend_command[0]):
            line += f": PROBLEM: {s.backend_command[0]} does not exist"
            ok = False
        elif settings.installer_written(s.backend_command) is not None and \
                s.backend_command[:2] != settings.default_backend_command(a.venv):
            line += ": PROBLEM: backend_command was written by an older install; run python3 install.py"
            ok = False
    print(line)
    if not targets:
        print("hosts: no GIMP 3 or Krita 5 found for this user")
    for t in targets:
        problems = plugins.check_target(t, host_python, a.plugin_src)
        tags = vendored.available_tags(t.plugin_dir)
        print(f"{t.host} ({t.variant}): {t.plugin_dir}: " + ("ok" if not problems else "PROBLEM: " + "; ".join(problems)))
        print(f"    Python {', '.join(t.python_versions) or 'unknown'}; vendored: {', '.join(tags) or 'none'}")
        ok &= not problems
    print("all good" if ok else "something is missing: run python3 install.py")
    return 0 if ok else 1


def cmd_uninstall(a, ops: Ops, targets: list, settings_path: str) -> int:
    if not targets:
        ops.say("No host plug-in folders found.")
    for t in targets:
        ops.say(f"==> Removing the {t.host} plug-in from {t.plugin_root}")
        if t.host == "gimp":
            plugins.uninstall_gimp_plugin(t.plugin_root, ops)
        else:
            plugins.uninstall_krita_plugin(t.plugin_root, t.kritarc, ops)
    if a.purge:
        ops.say("==> Purging settings, environments and caches")
        ops.remove(settings_path)
        ops.remove(settings.fs_settings.state_dir(home=os.path.abspath(a.home) if a.home else None))
        if not a.no_venv:
            ops.remove(a.venv)
            ops.remove(PREP_VENV)
        ops.remove(wheels.wheel_cache_dir())
    else:
        ops.say(f"Kept the settings file {settings_path} (add --purge to remove it and the venvs).")
    return 0


def cmd_serve(a, ops: Ops, settings_path: str, rest: list) -> int:
    """Run `<venv>/bin/facesketch serve` where the plug-ins look (as facesketch_client.launcher's auto-start does)."""
    s = settings.fs_settings.load(settings_path)
    extra = [] if "--bind" in rest else ["--bind", s.address]
    extra += [] if "--log-level" in rest else ["--log-level", s.log_level]
    cmd = settings.default_backend_command(a.venv) + extra + rest
    ops.say("==> Starting the backend: " + " ".join(cmd))
    if ops.dry_run:
        return 0
    if not os.path.exists(cmd[0]):
        raise InstallError(f"{cmd[0]} does not exist: run python3 install.py without --no-venv first")
    sys.stdout.flush()
    os.chdir(REPO)
    os.execv(cmd[0], cmd)
    return 0  # not reached


def main(argv: Optional[list] = None) -> int:
    a, rest = _parse(list(sys.argv[1:] if argv is None else argv))
    ops = Ops(dry_run=a.dry_run, verbose=not a.quiet)
    if os.environ.get("SUDO_USER") and hasattr(os, "geteuid") and os.geteuid() == 0 and not a.home \
            and not a.test and not (a.gimp_dir or a.krita_dir):
        print(f"install.py: running under sudo: the plug-ins and settings go into root's home, not "
              f"{os.environ['SUDO_USER']}'s. Run it without sudo (it needs no root rights).", file=sys.stderr)
    host_python = [v.strip() for v in a.host_python.split(",")] if a.host_python else None
    if host_python:
        wheels.python_tags_for(host_python)  # validate early
    a.venv = os.path.abspath(a.venv)
    settings_path = settings.path(a.home)
    targets = resolve_targets(a, host_python)

    if a.check:
        return cmd_check(a, targets, host_python, settings_path)
    if a.uninstall:
        return cmd_uninstall(a, ops, targets, settings_path)

    py = venv.venv_python(a.venv)
    if not a.no_venv:
        req = venv.REQUIREMENTS_TEST if a.test else venv.REQUIREMENTS_RAY if a.ray else venv.REQUIREMENTS
        py = venv.ensure_venv(ops, a.venv, req, a.venv_python)
    if a.prep:
        if not os.path.isfile(venv.REQUIREMENTS_PREP):
            raise InstallError(f"{venv.REQUIREMENTS_PREP} does not exist in this checkout")
        venv.ensure_venv(ops, PREP_VENV, venv.REQUIREMENTS_PREP, a.venv_python)
    if not targets:
        ops.say("==> No host plug-ins to install" + (" (none found)" if _host_list(a.hosts) is None and not a.test else ""))
    failed = []
    for t in targets:
        ops.say(f"    {t.describe()}")
        try:
            plugins.install_target(ops, t, host_python, None if a.no_venv else a.venv, a.plugin_src)
        except InstallError as e:  # the other host may still work
            print(f"install.py: {t.host} plug-in not installed: {e}", file=sys.stderr)
            failed.append(t.host)
    settings.write_default_settings(ops, settings_path, a.venv, create_only=a.test)
    if failed and not a.test:
        print(f"install.py: finished with problems ({', '.join(failed)}); see above.", file=sys.stderr)
        return 1

    if a.test:
        return testing.run(ops, py, rest, apt=not a.no_apt)
    if a.serve:
        return cmd_serve(a, ops, settings_path, rest)
    ops.say("Done." + ("" if a.dry_run else " Restart GIMP/Krita to load the plug-ins."))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except InstallError as e:
        print(f"install.py: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
