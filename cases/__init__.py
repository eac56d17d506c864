"""Cases, studies, series and volumes; DICOM/NIfTI ingestion, de-identification, rendering."""
