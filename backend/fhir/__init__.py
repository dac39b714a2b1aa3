"""FHIR R4, read-only: what the hospital's record and research warehouse read from us.

``routes`` (the ``/fhir/R4`` blueprint, not in the OpenAPI document: FHIR clients read the
CapabilityStatement), ``mapping`` (our rows -> FHIR resources, the one place), ``codes`` (our
CodeSystems), ``search`` (parameters and keyset paging), ``auth`` (SMART Backend Services),
``bulk`` (the asynchronous ``$export``, run by the scheduler) and ``cli``
(``flask fhir register-client``). docs/fhir.md says what and why.
"""
