-- Posts whose normalized values changed while their raw record did not (their cohort's
-- reference moved, or another post of their image became the canonical one): `values`
-- (post_key and the normalized columns), written under the change number $seq.
UPDATE posts
SET
    norm_score = v.norm_score,
    is_canonical = v.is_canonical,
    immature = v.immature,
    changed_seq = $seq
FROM "values" AS v
WHERE posts.post_key = v.post_key
    AND (
        posts.norm_score IS DISTINCT FROM v.norm_score
        OR posts.is_canonical IS DISTINCT FROM v.is_canonical
        OR posts.immature IS DISTINCT FROM v.immature
    );
