"""A base install (no ``signing`` extra) runs everything but signing, and says what to
install when asked to sign or verify."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Runs in a fresh interpreter where importing cryptography fails as it does in a bare
# venv; the parent process has it loaded already.
_BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoCryptography(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "cryptography" or name.startswith("cryptography."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoCryptography())
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCK + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_consume_and_publish_paths_import_without_cryptography() -> None:
    done = _run(
        """
        import msgbus.demo, msgbus.cli.main, msgbus.consume.consumer, msgbus.publish.publisher
        import msgbus.consume.messages
        assert "cryptography" not in sys.modules
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_signing_without_the_extra_names_the_extra() -> None:
    done = _run(
        """
        from msgbus.errors import ConfigError
        try:
            from msgbus.security import Signer
        except ConfigError as exc:
            print(exc)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'msgbus[signing]'" in done.stdout


def test_names_load_on_first_use() -> None:
    import msgbus.security as security
    from msgbus.security.dn import slash_dn
    from msgbus.security.smime import Signer

    assert security.Signer is Signer
    assert security.slash_dn is slash_dn
