"""Initial schema: hosts, collection_log, the wide host tables and host_chunks.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The column lists below are a frozen copy of the record layouts at this
revision (``collectbus.records``, ``collectbus.procfields``): a column added to
those later is added by a later migration, never by editing this one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _names(text: str) -> list[str]:
    return text.split()


_CPU = _names("cpu user nice system idle iowait irq softirq steal guest guest_nice")

_STAT = _names(
    "boot_time_s ctxt_total intr_total softirq_total forks_total procs_running procs_blocked"
)

_MEM = _names(
    "mem_total_bytes mem_free_bytes mem_available_bytes buffers_bytes cached_bytes "
    "swap_cached_bytes active_bytes inactive_bytes active_anon_bytes inactive_anon_bytes "
    "active_file_bytes inactive_file_bytes unevictable_bytes mlocked_bytes "
    "swap_total_bytes swap_free_bytes zswap_bytes zswapped_bytes dirty_bytes "
    "writeback_bytes anon_pages_bytes mapped_bytes shmem_bytes kreclaimable_bytes "
    "slab_bytes sreclaimable_bytes sunreclaim_bytes kernel_stack_bytes page_tables_bytes "
    "sec_page_tables_bytes nfs_unstable_bytes bounce_bytes writeback_tmp_bytes "
    "commit_limit_bytes committed_as_bytes vmalloc_total_bytes vmalloc_used_bytes "
    "vmalloc_chunk_bytes percpu_bytes anon_huge_pages_bytes shmem_huge_pages_bytes "
    "shmem_pmd_mapped_bytes file_huge_pages_bytes file_pmd_mapped_bytes balloon_bytes "
    "hardware_corrupted_bytes cma_total_bytes cma_free_bytes unaccepted_bytes "
    "hugepages_total hugepages_free hugepages_rsvd hugepages_surp hugepagesize_bytes "
    "hugetlb_bytes direct_map_4k_bytes direct_map_2m_bytes direct_map_1g_bytes"
)

_VMSTAT = _names(
    "nr_free_pages nr_free_pages_blocks nr_zone_inactive_anon nr_zone_active_anon "
    "nr_zone_inactive_file nr_zone_active_file nr_zone_unevictable nr_zone_write_pending "
    "nr_mlock nr_zspages nr_free_cma numa_hit numa_miss numa_foreign numa_interleave "
    "numa_local numa_other nr_inactive_anon nr_active_anon nr_inactive_file "
    "nr_active_file nr_unevictable nr_slab_reclaimable nr_slab_unreclaimable "
    "nr_isolated_anon nr_isolated_file workingset_nodes workingset_refault_anon "
    "workingset_refault_file workingset_activate_anon workingset_activate_file "
    "workingset_restore_anon workingset_restore_file workingset_nodereclaim nr_anon_pages "
    "nr_mapped nr_file_pages nr_dirty nr_writeback nr_shmem nr_shmem_hugepages "
    "nr_shmem_pmdmapped nr_file_hugepages nr_file_pmdmapped nr_anon_transparent_hugepages "
    "nr_vmscan_write nr_vmscan_immediate_reclaim nr_dirtied nr_written "
    "nr_throttled_written nr_kernel_misc_reclaimable nr_foll_pin_acquired "
    "nr_foll_pin_released nr_kernel_stack nr_page_table_pages nr_sec_page_table_pages "
    "nr_iommu_pages nr_swapcached pgpromote_success pgpromote_candidate "
    "pgpromote_candidate_nrl pgdemote_kswapd pgdemote_direct pgdemote_khugepaged "
    "pgdemote_proactive nr_hugetlb nr_balloon_pages nr_kernel_file_pages "
    "nr_dirty_threshold nr_dirty_background_threshold nr_memmap_pages "
    "nr_memmap_boot_pages pgpgin pgpgout pswpin pswpout pgalloc_dma pgalloc_dma32 "
    "pgalloc_normal pgalloc_movable pgalloc_device allocstall_dma allocstall_dma32 "
    "allocstall_normal allocstall_movable allocstall_device pgskip_dma pgskip_dma32 "
    "pgskip_normal pgskip_movable pgskip_device pgfree pgactivate pgdeactivate pglazyfree "
    "pgfault pgmajfault pglazyfreed pgrefill pgreuse pgsteal_kswapd pgsteal_direct "
    "pgsteal_khugepaged pgsteal_proactive pgscan_kswapd pgscan_direct pgscan_khugepaged "
    "pgscan_proactive pgscan_direct_throttle pgscan_anon pgscan_file pgsteal_anon "
    "pgsteal_file zone_reclaim_success zone_reclaim_failed pginodesteal slabs_scanned "
    "kswapd_inodesteal kswapd_low_wmark_hit_quickly kswapd_high_wmark_hit_quickly "
    "pageoutrun pgrotated drop_pagecache drop_slab oom_kill numa_pte_updates "
    "numa_huge_pte_updates numa_hint_faults numa_hint_faults_local numa_pages_migrated "
    "pgmigrate_success pgmigrate_fail thp_migration_success thp_migration_fail "
    "thp_migration_split compact_migrate_scanned compact_free_scanned compact_isolated "
    "compact_stall compact_fail compact_success compact_daemon_wake "
    "compact_daemon_migrate_scanned compact_daemon_free_scanned htlb_buddy_alloc_success "
    "htlb_buddy_alloc_fail unevictable_pgs_culled unevictable_pgs_scanned "
    "unevictable_pgs_rescued unevictable_pgs_mlocked unevictable_pgs_munlocked "
    "unevictable_pgs_cleared unevictable_pgs_stranded thp_fault_alloc thp_fault_fallback "
    "thp_fault_fallback_charge thp_collapse_alloc thp_collapse_alloc_failed "
    "thp_file_alloc thp_file_fallback thp_file_fallback_charge thp_file_mapped "
    "thp_split_page thp_split_page_failed thp_deferred_split_page "
    "thp_underused_split_page thp_split_pmd thp_scan_exceed_none_pte "
    "thp_scan_exceed_swap_pte thp_scan_exceed_share_pte thp_split_pud thp_zero_page_alloc "
    "thp_zero_page_alloc_failed thp_swpout thp_swpout_fallback balloon_inflate "
    "balloon_deflate balloon_migrate swap_ra swap_ra_hit swpin_zero swpout_zero "
    "ksm_swpin_copy cow_ksm zswpin zswpout zswpwb direct_map_level2_splits "
    "direct_map_level3_splits direct_map_level2_collapses direct_map_level3_collapses "
    "nr_unstable"
)

_DISK = _names(
    "device major minor read_ios read_merges read_sectors read_ticks_ms write_ios "
    "write_merges write_sectors write_ticks_ms in_flight io_ticks_ms time_in_queue_ms "
    "discard_ios discard_merges discard_sectors discard_ticks_ms flush_ios flush_ticks_ms"
)

_NET = _names(
    "iface rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed "
    "rx_multicast tx_bytes tx_packets tx_errs tx_drop tx_fifo tx_colls tx_carrier "
    "tx_compressed"
)

_LOAD = _names("load1 load5 load15 procs_running procs_total last_pid")

_WIDE: tuple[tuple[str, list[str], set[str]], ...] = (
    # (table, columns, nullable columns)
    ("host_cpu", _CPU, set()),
    ("host_stat", _STAT, set()),
    ("host_mem", _MEM, set(_MEM)),
    ("host_vmstat", _VMSTAT, set(_VMSTAT)),
    ("host_disk", _DISK, set(_DISK[14:])),
    ("host_net", _NET, set()),
    ("host_load", _LOAD, set()),
)
_TEXT = {"device", "iface"}
_FLOAT = {"load1", "load5", "load15"}


def _column(name: str, nullable: bool) -> sa.Column[object]:
    if name in _TEXT:
        return sa.Column(name, sa.Text(), nullable=nullable)
    if name in _FLOAT:
        return sa.Column(name, sa.Double(), nullable=nullable)
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("first_seen_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hosts"),
        sa.UniqueConstraint("name", name="uq_hosts_name"),
    )
    op.create_table(
        "collection_log",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("started_ns", sa.BigInteger(), nullable=False),
        sa.Column("duration_ns", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_collection_log"),
    )
    op.create_index("ix_collection_log_started_ns", "collection_log", ["started_ns"])
    for table, columns, nullable in _WIDE:
        op.create_table(
            table,
            sa.Column("host_id", sa.Integer(), nullable=False),
            sa.Column("time_ns", sa.BigInteger(), nullable=False),
            *(_column(c, c in nullable) for c in columns),
            sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=f"fk_{table}_host_id_hosts"),
        )
        op.create_index(f"ix_{table}_time_ns", table, ["time_ns"])
    op.create_table(
        "host_chunks",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("hour_start_ns", sa.BigInteger(), nullable=False),
        sa.Column("first_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_ns", sa.BigInteger(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_host_chunks"),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name="fk_host_chunks_host_id_hosts"),
        sa.UniqueConstraint(
            "host_id",
            "source",
            "hour_start_ns",
            "first_ns",
            name="uq_host_chunks_host_id_source_hour_start_ns_first_ns",
        ),
    )


def downgrade() -> None:
    op.drop_table("host_chunks")
    for table, _, _ in reversed(_WIDE):
        op.drop_table(table)
    op.drop_table("collection_log")
    op.drop_table("hosts")
