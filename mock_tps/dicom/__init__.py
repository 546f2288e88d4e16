"""DICOM in and out of the simulated TPS.

Import (CT series + RT Structure Set -> a simulated-TPS case) and export (RT Dose and a minimal
RT Plan of a session's final dose; an OpenKBP patient as CT + RT Structure Set), with pydicom.
"""
