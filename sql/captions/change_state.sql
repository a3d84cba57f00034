-- Where the catalog stands: the last change number issued (what an export records, to look
-- for what changed after it next time), and the last added_seq given to a post (every post
-- numbered up to it lies in the export's ranges; later ones are new). 0 before any.
SELECT
    coalesce((SELECT value FROM catalog_state WHERE key = 'change_seq'), 0) AS change_seq,
    greatest(
        coalesce((SELECT value FROM catalog_state WHERE key = 'added_seq'), 0),
        coalesce((SELECT max(added_seq) FROM posts), 0)
    ) AS through;
