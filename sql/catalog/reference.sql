-- The scores the head $head's percentiles rank against, ascending (as they were inserted).
SELECT score FROM score_reference WHERE head_version = $head;
