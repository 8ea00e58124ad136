"""What the tests share; fixtures stay in the ``conftest.py`` files, which import from here.

- ``clock``: ``T0``, ``FakeTime`` (a hand-moved time source) and the one virtual clock for async tests: the twin's
  ``SimClock`` auto-jumping (``autojumping``), held while a driver request is on the wire (``hold_meter_requests``).
- ``meter``: the meter model: what a charger writes (``GW``, ``USER``, ``TARIFF``), seeded meters, the one
  model-level ``charge()``, pyocmf's verdicts (``assert_verifies``, ``verified_payload``, ``pyocmf_rejects``).
- ``twin``: a seeded ``Twin`` (``new_twin``), its URLs, its network faults, its journal (``wire``, ``calls``,
  ``requests_to``), ``load_for``.
- ``http``: ``V1``, JSON answers checked (``json_ok``, ``json_error``), raw bytes (``send_raw``, ``MALFORMED``),
  libcurl-like sessions, ``until``.
- ``driver``: the bundled driver on the test clock (``new_driver``), ``make_req``, ``wait`` with a hang guard.
- ``charger``: a charger written by hand over HTTP, with the one HTTP-level ``Charger.charge()``; ``lab``: the
  conformance lab built on it; ``processes``: the real ``iemdcr-sim serve`` (e2e).
- ``fake_meter``: the stand-in for the few answers no meter gives (its docstring lists them).
- ``leaks``: the check that fails an async test leaving a task behind; ``traces``: replaying recorded wire traces;
  ``fuzz``: Hypothesis strategies for HTTP; ``browser``: Chromium over the DevTools protocol.
"""
