"""Lab hosts only: keep the compiled code of Ansible's module payload from one module run to the next.

Ansible sends every module to a host as a zip file and Python imports it with zipimport, which
compiles every source file in it (ansible.module_utils.basic and what it imports) on every module
run and never writes the result anywhere: about a third of the CPU a lab host spends on a task.
lab/bootstrap puts this file and a .pth line that imports it into the lab image; production hosts
never see it. It keeps the code objects in /var/cache/tgstack-lab-bytecode, under the SHA-256 of the
interpreter's bytecode version, the file's path inside the zip and its exact source, so an entry is
only ever used for the same source on the same interpreter. It changes what runs in no way, only how
long the import takes; any error (a damaged entry, a user that cannot write the directory) falls back
to compiling, as Python would have done.
"""

import contextlib
import os
import zipimport

CACHE = "/var/cache/tgstack-lab-bytecode"


def _install() -> None:
    compile_source = getattr(zipimport, "_compile_source", None)
    if compile_source is None or not os.path.isdir(CACHE):
        return

    def cached(pathname, source):
        import _imp
        import hashlib
        import marshal
        from importlib.util import MAGIC_NUMBER

        inner = pathname.rpartition(".zip" + os.sep)[2]
        key = hashlib.sha256(b"\0".join([MAGIC_NUMBER, inner.encode(), bytes(source)])).hexdigest()
        entry = os.path.join(CACHE, key)
        try:
            with open(entry, "rb") as stored:
                code = marshal.load(stored)
            _imp._fix_co_filename(code, pathname)  # tracebacks name this run's file, as for a .pyc
            return code
        except (OSError, EOFError, ValueError, TypeError, AttributeError):
            pass
        code = compile_source(pathname, source)
        partial = f"{entry}.{os.getpid()}.tmp"
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(descriptor, "wb") as out:
                marshal.dump(code, out)
            os.chmod(partial, 0o644)
            os.replace(partial, entry)  # readers see a whole entry or none
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(partial)
        return code

    zipimport._compile_source = cached


with contextlib.suppress(Exception):  # never stop Python from starting because of a cache
    _install()
