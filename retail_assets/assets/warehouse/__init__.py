"""The Kimball warehouse in retail_dwh: inputs (the hour's incoming rows), loads (what is
written), checks and reconciliation (what is verified), and the assets that declare them:
dimensions (four SCD2 dimensions, dim_date) and facts."""
