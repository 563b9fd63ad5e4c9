# The paper's figures and the training curves (matplotlib, headless, CPU). Each is wrapped in report(...), so
# that `snakemake --report report.html` gathers them, with the tables, into one page.

rule figure_samples:
    input:
        unpack(shapes_of([BASELINE, OURS])),
        unpack(training_shapes),
    output:
        report(
            "results/{dataset}/figures/fig1_samples.png",
            caption="../report/fig1.rst",
            category="Figures",
        ),
    log:
        "results/{dataset}/logs/figures/fig1_samples.log",
    conda:
        "../envs/evaluate.yaml"
    params:
        settings=settings("figure_samples"),
    script:
        "../workflow_scripts/figure_samples.py"


rule prior_samples:
    wildcard_constraints:
        method="|".join(ROWS),
    input:
        shapes=SHAPES,
        diagrams="results/{dataset}/{category}/generate/{method}/diagrams.npz",
    output:
        report(
            "results/{dataset}/{category}/figures/prior_samples/{method}.png",
            caption="../report/prior_samples.rst",
            category="Prior samples",
            subcategory="{category}",
        ),
    log:
        "results/{dataset}/logs/figures/prior_samples_{category}_{method}.log",
    conda:
        "../envs/evaluate.yaml"
    script:
        "../workflow_scripts/prior_samples.py"


rule figure_interpolation:
    input:
        meshes=f"results/{{dataset}}/{{category}}/generate/{OURS}/interpolation.npz",
        diagrams=f"results/{{dataset}}/{{category}}/generate/{OURS}/interpolation.diagrams.npz",
        generator=f"results/{{dataset}}/{{category}}/generate/{OURS}/interpolation.generator.npz",
    output:
        report(
            "results/{dataset}/{category}/figures/fig2_interpolation.png",
            caption="../report/fig2.rst",
            category="Figures",
            subcategory="{category}",
        ),
    log:
        "results/{dataset}/logs/figures/fig2_interpolation_{category}.log",
    conda:
        "../envs/evaluate.yaml"
    params:
        settings=settings("figure_interpolation"),
    script:
        "../workflow_scripts/figure_interpolation.py"


rule figure_pd_matrices:
    input:
        model=f"results/{{dataset}}/{{category}}/train/{OURS}/model.pt",
        diagrams=category_shards("results/{dataset}/{category}/diagrams/{shard}.npz"),
    output:
        figure=report(
            "results/{dataset}/{category}/figures/fig3_pd_matrices.png",
            caption="../report/fig3.rst",
            category="Figures",
            subcategory="{category}",
        ),
        values="results/{dataset}/{category}/figures/fig3_pd_matrices.json",
    log:
        "results/{dataset}/logs/figures/fig3_pd_matrices_{category}.log",
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=60,
        mem_mb=8000,
    params:
        settings=settings("figure_pd_matrices"),
    script:
        "../workflow_scripts/figure_pd_matrices.py"


rule figure_methods:
    input:
        unpack(shapes_of(ROWS)),
    output:
        report(
            "results/{dataset}/figures/fig4_methods.png",
            caption="../report/fig4.rst",
            category="Figures",
        ),
    log:
        "results/{dataset}/logs/figures/fig4_methods.log",
    conda:
        "../envs/evaluate.yaml"
    params:
        settings=settings("figure_methods"),
    script:
        "../workflow_scripts/figure_methods.py"


rule training_curves:
    input:
        unpack(training_curves_inputs),
    output:
        report(
            "results/{dataset}/{category}/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training curves",
            subcategory="{category}",
        ),
    log:
        "results/{dataset}/logs/figures/training_curves_{category}.log",
    conda:
        "../envs/evaluate.yaml"
    params:
        methods=list(config["methods"]),
    script:
        "../workflow_scripts/training_curves.py"
