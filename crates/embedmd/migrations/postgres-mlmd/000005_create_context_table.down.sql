-- Drops the MLMD context table and its data.
DROP TABLE IF EXISTS context;
