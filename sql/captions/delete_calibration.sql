-- Forget a head's cut-points (recalibration replaces them in the same transaction).
DELETE FROM calibrations WHERE head_version = $head;
