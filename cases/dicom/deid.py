"""De-identification of DICOM data on the way in (DICOM PS3.15 Annex E, basic profile).

What this module guarantees, and why:

* ``dataset_deidentify`` applies the Basic Application Confidentiality Profile to a pydicom
  dataset, walking every nested sequence: identifying attributes (patient name/id/birth date,
  other patient ids, institution, every physician and operator, accession and study ids,
  station and device serial, free-text comments...) are removed, every person name (PN) is
  removed wherever it hides (e.g. in a request attribute sequence), every date and time
  (DA/DT/TM) is removed (no date shifting: nothing downstream needs calendar dates, and a
  shifted date is still a quasi-identifier), and EVERY private element is removed (vendor
  blocks routinely carry names and ids).
* Instance UIDs (study, series, SOP instance, frame of reference, referenced instances...)
  are re-mapped with ``uid_remap``: HMAC-SHA256 of the original UID keyed with
  ``STROKEAID["UID_SECRET"]``, rendered as ``2.25.<128-bit int>``. The same input gives the
  same output across uploads of one installation (a second upload of the same study joins it),
  the original cannot be recovered without the secret, and no table of originals is kept.
  DICOM-defined UIDs (``1.2.840.10008.*``: SOP classes, transfer syntaxes, coding schemes)
  identify nothing and are kept.
* Options kept, declared in DeidentificationMethodCodeSequence (CID 7050):
  113100 Basic Application Confidentiality Profile; 113108 Retain Patient Characteristics
  Option (age and sex are stroke risk factors the research needs; ages above 89 are capped
  at "090Y" because very old ages are rare enough to identify); 113105 Clean Descriptors
  Option (series/study description and protocol name are kept only after every known
  identifying value of the same header has been blanked out of them, because the kind of a
  series is read from them and the viewer shows them).

The platform never stores the DICOM files themselves: the voxels go to a ``.npy`` and only
``header_summary`` (an allow-list of technical attributes read from an already de-identified
dataset) reaches the database. The profile above is applied first anyway, so a mistake in the
allow-list cannot leak what the profile removed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

#: CID 7050 codes describing what we did (DeidentificationMethodCodeSequence).
DEID_CODES: tuple[tuple[str, str], ...] = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113105", "Clean Descriptors Option"),
    ("113108", "Retain Patient Characteristics Option"),
)
DEID_METHOD = "PS3.15 E.1 basic; clean descriptors; retain patient chars"

# Annex E table E.1-1 attributes with action X/Z/D (removed here; we never need a dummy value
# because no DICOM file is written from these datasets). PN, DA, DT, TM and private elements
# are removed by VR/group below in addition to this list.
_REMOVE_KEYWORDS = (
    "AccessionNumber",
    "AcquisitionComments",
    "AcquisitionContextSequence",
    "AcquisitionDeviceProcessingDescription",
    "AcquisitionProtocolDescription",
    "ActualHumanPerformersSequence",
    "AdditionalPatientHistory",
    "AdmissionID",
    "AdmittingDiagnosesCodeSequence",
    "AdmittingDiagnosesDescription",
    "Allergies",
    "Arbitrary",
    "AuthorObserverSequence",
    "BranchOfService",
    "CassetteID",
    "ClinicalTrialSponsorName",
    "ClinicalTrialSubjectID",
    "ClinicalTrialSubjectReadingID",
    "ClinicalTrialProtocolID",
    "ClinicalTrialSiteID",
    "ClinicalTrialSiteName",
    "CommentsOnThePerformedProcedureStep",
    "ConfidentialityConstraintOnPatientDataDescription",
    "ContentCreatorIdentificationCodeSequence",
    "ContributionDescription",
    "CountryOfResidence",
    "CurrentPatientLocation",
    "CustodialOrganizationSequence",
    "DerivationDescription",
    "DetectorID",
    "DeviceSerialNumber",
    "DeviceUID",
    "DigitalSignaturesSequence",
    "DischargeDiagnosisDescription",
    "EthnicGroup",
    "FillerOrderNumberImagingServiceRequest",
    "GantryID",
    "GeneratorID",
    "IconImageSequence",
    "IdentifyingComments",
    "ImageComments",
    "ImagePresentationComments",
    "ImagingServiceRequestComments",
    "Impressions",
    "InstitutionAddress",
    "InstitutionCodeSequence",
    "InstitutionName",
    "InstitutionalDepartmentName",
    "InstitutionalDepartmentTypeCodeSequence",
    "IssuerOfAdmissionID",
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "IssuerOfAccessionNumberSequence",
    "MedicalAlerts",
    "MedicalRecordLocator",
    "MilitaryRank",
    "ModifiedAttributesSequence",
    "NamesOfIntendedRecipientsOfResults",
    "Occupation",
    "OperatorIdentificationSequence",
    "OriginalAttributesSequence",
    "OrderCallbackPhoneNumber",
    "OrderEnteredBy",
    "OrderEntererLocation",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientAddress",
    "PatientBirthDate",
    "PatientBirthName",
    "PatientBirthTime",
    "PatientComments",
    "PatientID",
    "PatientInstitutionResidence",
    "PatientInsurancePlanCodeSequence",
    "PatientMotherBirthName",
    "PatientName",
    "PatientPrimaryLanguageCodeSequence",
    "PatientReligiousPreference",
    "PatientState",
    "PatientTelephoneNumbers",
    "PatientTelecomInformation",
    "PerformedLocation",
    "PerformedProcedureStepDescription",
    "PerformedProcedureStepID",
    "PerformedStationAETitle",
    "PerformedStationGeographicLocationCodeSequence",
    "PerformedStationName",
    "PerformedStationNameCodeSequence",
    "PerformingPhysicianIdentificationSequence",
    "PerformingPhysicianName",
    "PersonAddress",
    "PersonIdentificationCodeSequence",
    "PersonName",
    "PersonTelephoneNumbers",
    "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence",
    "PhysiciansReadingStudyIdentificationSequence",
    "PlacerOrderNumberImagingServiceRequest",
    "PlateID",
    "PreMedication",
    "ProcedureCodeSequence",
    "PerformedProtocolCodeSequence",
    "RequestedProcedureCodeSequence",
    "ReasonForRequestedProcedureCodeSequence",
    "ReferencedPerformedProcedureStepSequence",
    "PregnancyStatus",
    "ReasonForTheImagingServiceRequest",
    "ReasonForStudy",
    "ReferencedPatientAliasSequence",
    "ReferencedPatientPhotoSequence",
    "ReferencedPatientSequence",
    "ReferencedStudySequence",
    "ReferringPhysicianAddress",
    "ReferringPhysicianIdentificationSequence",
    "ReferringPhysicianName",
    "ReferringPhysicianTelephoneNumbers",
    "RegionOfResidence",
    "RequestAttributesSequence",
    "RequestedContrastAgent",
    "RequestedProcedureComments",
    "RequestedProcedureDescription",
    "RequestedProcedureID",
    "RequestedProcedureLocation",
    "RequestingPhysician",
    "RequestingService",
    "ResponsibleOrganization",
    "ResponsiblePerson",
    "ResultsComments",
    "ResultsDistributionListSequence",
    "ResultsIDIssuer",
    "ScheduledHumanPerformersSequence",
    "ScheduledPatientInstitutionResidence",
    "ScheduledPerformingPhysicianIdentificationSequence",
    "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepID",
    "ScheduledProcedureStepLocation",
    "ScheduledStationAETitle",
    "ScheduledStationGeographicLocationCodeSequence",
    "ScheduledStationName",
    "ScheduledStationNameCodeSequence",
    "ServiceEpisodeDescription",
    "ServiceEpisodeID",
    "SourceApplicationEntityTitle",
    "SpecialNeeds",
    "StationName",
    "StudyComments",
    "StudyID",
    "StudyIDIssuer",
    "TextComments",
    "TextString",
    "TimezoneOffsetFromUTC",
    "TopicAuthor",
    "TopicKeywords",
    "TopicSubject",
    "TopicTitle",
    "VerifyingObserverIdentificationCodeSequence",
    "VerifyingObserverName",
    "VerifyingObserverSequence",
    "VerifyingOrganization",
    "VisitComments",
    "InstanceCreatorUID",
    "StorageMediaFileSetUID",
    "StorageMediaFileSetID",
    "PatientSize",
    "PatientWeight",
)
REMOVE_TAGS: frozenset[int] = frozenset(
    int(t) for t in (tag_for_keyword(k) for k in _REMOVE_KEYWORDS) if t is not None
)
#: Removed wherever they occur: people, and calendar dates/times (we remove, not shift).
REMOVE_VRS = frozenset({"PN", "DA", "DT", "TM"})
#: Kept under the Retain Patient Characteristics option (113108).
PATIENT_CHARACTERISTICS = ("PatientAge", "PatientSex")
#: Kept after cleaning under the Clean Descriptors option (113105).
DESCRIPTORS = ("SeriesDescription", "StudyDescription", "ProtocolName")
#: DICOM-defined UIDs (classes, transfer syntaxes, coding schemes): they identify nothing.
WELL_KNOWN_UID_PREFIX = "1.2.840.10008."
#: Attributes whose values identify people or places; used to clean the descriptors.
_PHI_SOURCE_KEYWORDS = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "PatientBirthDate",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "StationName",
)
_PHI_SOURCE_TAGS = tuple(int(tag_for_keyword(k)) for k in _PHI_SOURCE_KEYWORDS)  # type: ignore[arg-type]
_DESCRIPTOR_TAGS = frozenset(int(tag_for_keyword(k)) for k in DESCRIPTORS)  # type: ignore[arg-type]


def uid_remap(uid: str, *, secret: str | bytes) -> str:
    """The installation's stable replacement for ``uid``: ``2.25.<int>`` of HMAC-SHA256.

    The first 128 bits of the HMAC are shaped as a version-8 (custom) UUID so the result is
    a valid ``2.25`` UUID-derived UID (PS3.5 B.2), at most 44 characters long.
    """
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, uid.strip().rstrip("\x00").encode(), hashlib.sha256).digest()
    value = int.from_bytes(digest[:16], "big")
    value = (value & ~(0xF << 76)) | (0x8 << 76)  # version 8
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return f"2.25.{value}"


def is_well_known_uid(uid: str) -> bool:
    return uid.startswith(WELL_KNOWN_UID_PREFIX)


def _vr_of(ds: Dataset, tag: BaseTag) -> str | None:
    """The element's VR without decoding its value (implicit VR files carry none)."""
    raw = ds._dict[tag]
    vr = getattr(raw, "VR", None)
    if vr:
        return str(vr)
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def phi_values(ds: Dataset) -> list[str]:
    """Identifying strings of ``ds`` (names, ids, institution...), used to clean descriptors.

    Person names contribute each component (``DOE^JANE`` gives ``DOE`` and ``JANE``) so a
    description like "Jane Doe DWI" is cleaned too.
    """
    values: list[str] = []
    for tag in _PHI_SOURCE_TAGS:
        if tag not in ds:
            continue
        try:
            value = ds[tag].value
        except Exception:  # noqa: BLE001, S112 - an unreadable value cannot leak into text
            continue
        items = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
        for item in items:
            text = str(item or "").strip()
            for part in [*re.split(r"[\^=]", text), text]:
                part = part.strip()
                if len(part) >= 2 and part not in {"--", "---", "----"}:
                    values.append(part)
    return sorted(set(values), key=len, reverse=True)


def descriptor_clean(text: str, phi: Iterable[str]) -> str:
    """``text`` with every identifying value (case-insensitive) blanked out (Clean Descriptors)."""
    cleaned = str(text or "")
    for value in phi:
        # Whole words only: a two-letter name part must not eat "LI" out of "FLAIR".
        pattern = rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])"
        cleaned = re.sub(pattern, "", cleaned, flags=re.IGNORECASE)
    return re.sub(r"\s{2,}", " ", cleaned).strip(" _-^")[:64]


def _age_cap(age: str) -> str:
    """Ages above 89 years become "090Y" (rare ages identify)."""
    match = re.fullmatch(r"(\d{3})([DWMY])", str(age).strip())
    if match and match.group(2) == "Y" and int(match.group(1)) > 89:
        return "090Y"
    return str(age)


def _walk_remove(ds: Dataset, secret: str | bytes) -> None:
    """Removes identifying/private/date elements and remaps instance UIDs, recursively."""
    for tag in list(ds._dict.keys()):
        if tag.is_private or int(tag) in REMOVE_TAGS:
            del ds._dict[tag]
            continue
        vr = _vr_of(ds, tag)
        if vr is None:
            # Unknown public element: nothing tells us it is harmless (basic profile: remove).
            del ds._dict[tag]
            continue
        if vr in REMOVE_VRS:
            del ds._dict[tag]
            continue
        if vr == "SQ":
            for item in ds[tag].value:
                _walk_remove(item, secret)
        elif vr == "UI":
            elem = ds[tag]
            if elem.VM == 0 or elem.value in (None, ""):
                continue
            values = elem.value if elem.VM > 1 else [elem.value]
            mapped = [
                str(v) if is_well_known_uid(str(v)) else uid_remap(str(v), secret=secret)
                for v in values
            ]
            elem.value = mapped if elem.VM > 1 else mapped[0]


def dataset_deidentify(ds: Dataset, *, secret: str | bytes) -> Dataset:
    """Applies the basic profile (with the options in ``DEID_CODES``) to ``ds`` in place.

    Descriptors are cleaned of the header's own identifying values before those are removed.
    The file meta (if any) gets its media storage SOP instance UID remapped like the dataset's.
    Returns ``ds``.
    """
    phi = phi_values(ds)
    for tag in _DESCRIPTOR_TAGS:
        if tag in ds and ds[tag].value:
            ds[tag].value = descriptor_clean(str(ds[tag].value), phi)
    if "PatientAge" in ds and ds.PatientAge:
        ds.PatientAge = _age_cap(ds.PatientAge)
    _walk_remove(ds, secret)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for keyword in ("MediaStorageSOPInstanceUID",):
            value = meta.get(keyword)
            if value and not is_well_known_uid(str(value)):
                setattr(meta, keyword, uid_remap(str(value), secret=secret))
        for keyword in (
            "SourceApplicationEntityTitle",
            "SendingApplicationEntityTitle",
            "ReceivingApplicationEntityTitle",
            "SourcePresentationAddress",
            "SendingPresentationAddress",
            "ReceivingPresentationAddress",
            "PrivateInformationCreatorUID",
            "PrivateInformation",
        ):
            if keyword in meta:
                delattr(meta, keyword)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEID_METHOD
    ds.DeidentificationMethodCodeSequence = [
        _code_item(value, meaning) for value, meaning in DEID_CODES
    ]
    return ds


def _code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def deidentification_summary() -> dict[str, Any]:
    """What ``Series.header["deidentification"]`` records about the method."""
    return {
        "PatientIdentityRemoved": "YES",
        "DeidentificationMethod": DEID_METHOD,
        "DeidentificationMethodCodeSequence": [
            {"CodeValue": v, "CodingSchemeDesignator": "DCM", "CodeMeaning": m}
            for v, m in DEID_CODES
        ],
    }


def keyword_of(tag: int) -> str:
    return keyword_for_tag(tag) or f"{tag:08X}"
