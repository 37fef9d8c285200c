"""The Kimball warehouse's assets: the declarations (dimensions: four SCD2 dimensions and
dim_date; facts) and what they verify (checks, reconciliation). What they write is in
retail_assets/loads/."""
