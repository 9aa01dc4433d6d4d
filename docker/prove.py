#!/usr/bin/env python3
"""Proves docker/Dockerfile without a container engine.

Performs the Dockerfile's build and runtime steps in Debian 12 root trees made with
debootstrap and entered with chroot: every FROM starts a fresh tree, RUN runs in it (with the
ENV, WORKDIR and USER in force), COPY copies from the build context (the files git tracks) or
from an earlier stage. Then it starts the final stage's ENTRYPOINT + CMD as its USER, runs the
HEALTHCHECK command inside the tree until it passes, stops the daemon with STOPSIGNAL and
checks the exit status. Needs root, debootstrap and network access to a Debian mirror.

  docker/prove.py [--keep] [--work DIR]

The container's network is the host's here, so the daemon listens on a free loopback port
(as `docker run -e CWHOOK_SERVER_LISTEN=...` would set). With PROVE_CCACHE=1 the build stage
reuses the host's ccache (a build accelerator only; the steps run are the Dockerfile's).
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(ROOT, "docker", "Dockerfile")
IMAGES = {"debian:12": "bookworm", "debian:12-slim": "bookworm"}
MIRROR = "http://deb.debian.org/debian"


def log(msg):
    print(f"== {msg}", flush=True)


def die(msg):
    print(f"prove: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def parse(path):
    """Instructions as (keyword, argument text), continuation lines joined."""
    out, cur = [], ""
    for raw in open(path):
        line = raw.rstrip("\n")
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def exec_form(text):
    text = text.strip()
    return json.loads(text) if text.startswith("[") else ["/bin/sh", "-c", text]


class Stage:
    def __init__(self, name, root):
        self.name, self.root = name, root
        self.env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                    "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"}
        self.workdir, self.user = "/", "root"
        self.entrypoint, self.cmd, self.healthcheck, self.stopsignal = [], [], None, "SIGTERM"
        self.mounts = []

    def mount_all(self, ccache):
        for src, dst, opts in (("proc", "proc", ["-t", "proc"]), ("/dev", "dev", ["--bind"]),
                               ("/dev/pts", "dev/pts", ["--bind"])):
            target = os.path.join(self.root, dst)
            os.makedirs(target, exist_ok=True)
            subprocess.run(["mount", *opts, src, target], check=True)
            self.mounts.append(target)
        if ccache:
            target = os.path.join(self.root, "ccache")
            os.makedirs(target, exist_ok=True)
            host = subprocess.run(["ccache", "-k", "cache_dir"], capture_output=True, text=True).stdout.strip()
            subprocess.run(["mount", "--bind", host, target], check=True)
            self.mounts.append(target)
            self.env.update({"CCACHE_DIR": "/ccache", "CCACHE_COMPILERCHECK": "content", "CCACHE_NOHASHDIR": "true"})
        shutil.copy("/etc/resolv.conf", os.path.join(self.root, "etc", "resolv.conf"))

    def unmount_all(self):
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], check=False)
        self.mounts = []

    def ids(self, user):
        """uid:gid of `user` as the tree's own /etc/passwd names it."""
        if user.replace(":", "").isdigit():
            return user if ":" in user else f"{user}:{user}"
        for line in open(os.path.join(self.root, "etc", "passwd")):
            f = line.split(":")
            if f[0] == user:
                return f"{f[2]}:{f[3]}"
        die(f"USER {user}: not in the tree's /etc/passwd")

    def chroot_cmd(self, argv, user=None):
        user = user or self.user
        inner = f"cd {shlex.quote(self.workdir)} && exec " + " ".join(shlex.quote(a) for a in argv)
        return ["chroot", f"--userspec={self.ids(user)}", self.root,
                "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in self.env.items()], "/bin/sh", "-c", inner]


def debootstrap(base, suite, cache):
    if not os.path.exists(os.path.join(base, "etc", "debian_version")):
        log(f"debootstrap --variant=minbase {suite} (cache {cache})")
        os.makedirs(cache, exist_ok=True)
        subprocess.run(["debootstrap", "--variant=minbase", f"--cache-dir={cache}", suite, base, MIRROR],
                       check=True, stdout=subprocess.DEVNULL)


def context_files():
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], check=True, capture_output=True).stdout
    return [f for f in out.decode().split("\0") if f and os.path.exists(os.path.join(ROOT, f))]


def copy_into(stage, stages, args):
    words = shlex.split(args)
    source_stage = None
    if words[0].startswith("--from="):
        source_stage = stages[words[0].split("=", 1)[1]]
        words = words[1:]
    *srcs, dst = words
    if not dst.startswith("/"):
        dst = os.path.join(stage.workdir, dst)
    for src in srcs:
        if source_stage is None and src in (".", "./"):
            for f in context_files():
                target = os.path.join(stage.root, dst.lstrip("/"), f)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(os.path.join(ROOT, f), target, follow_symlinks=False)
            continue
        origin = os.path.join(source_stage.root if source_stage else ROOT, src.lstrip("/"))
        target = os.path.join(stage.root, dst.lstrip("/"))
        if dst.endswith("/") or os.path.isdir(target):
            target = os.path.join(target, os.path.basename(origin))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.isdir(origin):
            shutil.copytree(origin, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(origin, target)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="keep the root trees")
    ap.add_argument("--work", default=None, help="work directory (default: a new temp dir)")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        die("needs root (debootstrap, chroot, mount)")
    if not shutil.which("debootstrap"):
        log("installing debootstrap")
        subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True)
    work = opts.work or tempfile.mkdtemp(prefix="cwhook-prove.")
    cache = os.path.join(work, "debs")
    base = os.path.join(work, "base")
    log(f"work dir {work}")
    ccache = os.environ.get("PROVE_CCACHE") == "1"
    stages, order, stage, started = {}, [], None, time.time()
    try:
        for word, args in parse(DOCKERFILE):
            if word == "FROM":
                parts = args.split()
                image, name = parts[0], parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else str(len(order))
                if image not in IMAGES:
                    die(f"FROM {image}: only {', '.join(IMAGES)} can be reproduced here")
                if stage:
                    stage.unmount_all()
                debootstrap(base, IMAGES[image], cache)
                root = os.path.join(work, f"stage-{name}")
                subprocess.run(["rm", "-rf", "--one-file-system", root], check=True)
                log(f"FROM {image} AS {name}: copy of the {IMAGES[image]} tree")
                subprocess.run(["cp", "-a", base, root], check=True)
                stage = Stage(name, root)
                stage.mount_all(ccache and name == "build")
                stages[name] = stage
                order.append(name)
            elif word == "RUN":
                log(f"[{stage.name}] RUN {args[:110]}{'...' if len(args) > 110 else ''}")
                t0 = time.time()
                r = subprocess.run(stage.chroot_cmd(exec_form(args)))
                if r.returncode != 0:
                    die(f"RUN failed with status {r.returncode}: {args}")
                log(f"[{stage.name}] RUN done in {time.time() - t0:.0f}s")
            elif word == "COPY":
                log(f"[{stage.name}] COPY {args}")
                copy_into(stage, stages, args)
            elif word == "WORKDIR":
                stage.workdir = args
                os.makedirs(os.path.join(stage.root, args.lstrip("/")), exist_ok=True)
            elif word == "ENV":
                for item in shlex.split(args):
                    k, _, v = item.partition("=")
                    stage.env[k] = v
            elif word == "USER":
                stage.user = args
            elif word == "ENTRYPOINT":
                stage.entrypoint = exec_form(args)
            elif word == "CMD":
                stage.cmd = exec_form(args)
            elif word == "HEALTHCHECK":
                head, _, cmd = args.partition("CMD ")
                stage.healthcheck = exec_form(cmd)
            elif word == "STOPSIGNAL":
                stage.stopsignal = args
            elif word in ("EXPOSE", "VOLUME", "LABEL", "ARG"):
                log(f"[{stage.name}] {word} {args} (recorded)")
            else:
                die(f"unsupported instruction {word}")

        final = stage
        binary = os.path.join(final.root, "usr", "bin", "cwhook")
        size = os.path.getsize(binary) / 1e6
        out = subprocess.run(["chroot", final.root, "ldd", "/usr/bin/cwhook"], capture_output=True, text=True).stdout
        if "not found" in out:
            die(f"runtime stage lacks libraries:\n{out}")
        log(f"runtime stage: /usr/bin/cwhook {size:.1f} MB, every shared library present")
        port = free_port()
        final.env["CWHOOK_SERVER_LISTEN"] = f"0.0.0.0:{port}"
        argv = final.entrypoint + final.cmd
        log(f"start {' '.join(argv)} as {final.user} (CWHOOK_SERVER_LISTEN=0.0.0.0:{port})")
        daemon = subprocess.Popen(final.chroot_cmd(argv), stderr=subprocess.PIPE, text=True)
        healthy = False
        for attempt in range(50):
            r = subprocess.run(final.chroot_cmd(final.healthcheck), capture_output=True, text=True)
            if r.returncode == 0:
                healthy = True
                log(f"HEALTHCHECK {' '.join(final.healthcheck)}: {r.stdout.strip()} (attempt {attempt + 1})")
                break
            if daemon.poll() is not None:
                break
            time.sleep(0.2)
        whoami = subprocess.run(["ps", "-o", "user=", "-p", str(daemon.pid)], capture_output=True, text=True).stdout
        daemon.send_signal(getattr(signal, final.stopsignal))
        try:
            status = daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            status = "killed after 30 s"
        err = daemon.stderr.read()
        if not healthy:
            die(f"the health check never passed; daemon output:\n{err}")
        if status != 0:
            die(f"daemon exit status after {final.stopsignal}: {status}\n{err}")
        db = os.path.join(final.root, "var", "lib", "cwhook", "cwhook.db")
        if not os.path.exists(db):
            die("no database in the /var/lib/cwhook volume")
        owner = subprocess.run(["stat", "-c", "%u", db], capture_output=True, text=True).stdout.strip()
        log(f"{final.stopsignal}: exit 0; database in the volume owned by uid {owner}; the daemon ran as uid {whoami.strip()}")
        log(f"PROVED: build and runtime steps of docker/Dockerfile in {time.time() - started:.0f}s")
    finally:
        for s in stages.values():
            s.unmount_all()
        if not opts.keep and not opts.work:
            subprocess.run(["rm", "-rf", "--one-file-system", work], check=False)


if __name__ == "__main__":
    main()
